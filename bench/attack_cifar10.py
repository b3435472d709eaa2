"""Backdoor the small model on the real CIFAR-10 copy and record clean accuracy, ASR and time.

    python bench/attack_cifar10.py            # trigger binary:170 -> class 0, 1% poison, 10 epochs

Resumable: the result is saved to docs/results/attack_cifar10.json and skipped when present.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cifar10_folder, machine  # noqa: E402

from mesa import atomic  # noqa: E402
from mesa.method.attack import AttackConfig  # noqa: E402
from mesa.lab.pipeline.attack_stage import run_attack  # noqa: E402
from mesa.data import load_data  # noqa: E402

RESULT = Path(__file__).resolve().parents[1] / "docs" / "results" / "attack_cifar10.json"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--runs", default="bench/out/runs")
    args = parser.parse_args()
    if RESULT.exists():
        print(f"already measured: {RESULT}")
        print(RESULT.read_text())
        return
    spec = f"folder:{cifar10_folder()}"
    t = time.time()
    load_data(spec)
    first_load = time.time() - t
    t = time.time()
    data = load_data(spec)
    cached_load = time.time() - t
    print(f"data: first load {first_load:.1f} s, cached load {cached_load:.2f} s", flush=True)
    cfg = AttackConfig(data=spec, model="small", trigger="binary:170", target=0, poison_ratio=0.01,
                       epochs=args.epochs, device=args.device, out=args.runs)

    def log(p):
        if p.values.get("clean_acc") is not None:
            print(f"epoch {p.epoch}: {json.dumps(p.values)} ({time.time() - t0:.0f} s)", flush=True)

    t0 = time.time()
    path, metrics = run_attack(cfg, log, data=data)
    record = {"config": {k: v for k, v in vars(cfg).items() if k != "out"}, "metrics": metrics, "run": str(path),
              "wall_seconds": round(time.time() - t0, 1), "first_load_seconds": round(first_load, 1),
              "cached_load_seconds": round(cached_load, 2), "machine": machine(),
              "history": json.loads((path / "history.json").read_text())}
    atomic.write_json(RESULT, record)
    print(json.dumps(record["metrics"]))


if __name__ == "__main__":
    main()
