"""The 1% question's first half on the strong model: does the paper's gentle attack (10 epochs of SGD
lr 1e-3, 1% poison) plant a backdoor in fastnet's shipped clean base, and does plain fine-tuning (the
control, at the paper's 1% stamped fraction, no trigger) remove it? Ours (3 epochs, lr 0.01, 3%) beside it.

    python bench/strong_attack.py [--cases paper:binary:170 ours:binary:170 ...]

Each case (recipe:trigger, target 0) is saved to docs/results/strong_attack.json as it finishes and
skipped when rerun. ASRs carry their counts and 95% Wilson intervals (mesa/method/intervals.py).
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
from mesa.data import cached_data  # noqa: E402
from mesa.lab.storage.bases import SHIPPED  # noqa: E402
from mesa.lab.pipeline.stages import open_run, run_defense  # noqa: E402
from mesa.method.attack import AttackConfig  # noqa: E402
from mesa.lab.pipeline.attack_stage import run_attack  # noqa: E402
from mesa.method.defense import DefenseConfig  # noqa: E402

RESULT = Path(__file__).resolve().parents[1] / "docs" / "results" / "strong_attack.json"
RECIPES = {"paper": {"epochs": 10, "lr": 1e-3, "poison_ratio": 0.01},
           "ours": {"epochs": 3, "lr": 0.01, "poison_ratio": 0.03}}


def run_case(name: str, spec: str, runs: str, device: str) -> dict:
    recipe, trigger = name.split(":", 1)
    start = time.time()
    cfg = AttackConfig(data=spec, model="fastnet", trigger=trigger, target=0, init=str(SHIPPED / "cifar10-fastnet"),
                       device=device, out=runs, **RECIPES[recipe])
    path, attacked = run_attack(cfg, data=cached_data(spec))
    attack_seconds = time.time() - start
    ws = open_run(path, device, data=cached_data(spec))
    finetune = run_defense(ws, DefenseConfig(method="finetune", poison_ratio=0.01), census=None)
    return {"case": name, "attack": {**RECIPES[recipe], "metrics": attacked, "seconds": round(attack_seconds, 1)},
            "finetune_1pct": finetune, "run": str(path), **machine()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["paper:binary:170", "ours:binary:170"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--runs", default="bench/out/runs")
    args = ap.parse_args()
    spec = f"folder:{cifar10_folder()}"
    done = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    for name in args.cases:
        if name in done:
            print(f"{name}: already measured")
            continue
        done[name] = run_case(name, spec, args.runs, args.device)
        atomic.write_json(RESULT, done)
        print(json.dumps({k: done[name][k] for k in ("case", "attack", "finetune_1pct")}), flush=True)


if __name__ == "__main__":
    main()
