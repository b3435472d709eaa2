"""Which defense poison ratio works best for our models: retrain a backdoored CIFAR-10 case of
bench/defense_cifar10.py (its attack and MESA search must be finished) with the ensemble at
several poison ratios, keeping everything else fixed.

    python bench/poison_ratio_sweep.py [--trigger binary:170 --target 0] [--ratios 0.01 0.03 0.1 0.3]

Each ratio is saved to docs/results/poison_ratio_sweep.json as it finishes and skipped when the
script runs again. The defended models are not kept and the case's own results are not touched.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cifar10_folder, machine  # noqa: E402
from defense_cifar10 import OUT, case_key, log, marker  # noqa: E402

from mesa import artifacts, atomic  # noqa: E402
from mesa.data import load_data  # noqa: E402
from mesa.defense import DefenseConfig, defend  # noqa: E402
from mesa.stages import open_run  # noqa: E402

RESULT = Path(__file__).resolve().parents[1] / "docs" / "results" / "poison_ratio_sweep.json"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trigger", default="binary:170")
    parser.add_argument("--target", type=int, default=0)
    parser.add_argument("--method", default="ensemble")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--table", action="store_true", help="print the markdown table of what is measured")
    args = parser.parse_args()
    if args.table:
        print(table(marker(RESULT) or {"cases": {}}))
        return
    key = case_key(args.trigger, args.target)
    attack = marker(OUT / f"attack-{key}.json")
    if attack is None:
        raise SystemExit(f"case {args.trigger} -> {args.target} is not attacked yet: run bench/defense_cifar10.py first")
    run = Path(attack["run"])
    found = artifacts.load_search(run)
    if found is None:
        raise SystemExit(f"case {args.trigger} -> {args.target} has no MESA search yet: run bench/defense_cifar10.py first")
    results = marker(RESULT) or {"cases": {}}
    ws = open_run(run, args.device, data=load_data(f"folder:{cifar10_folder()}"))
    generators = {b: v["generator"] for b, v in found["betas"].items()}  # defend() moves them to the device
    for ratio in args.ratios:
        name = f"{args.trigger}->{args.target} {args.method} epochs={args.epochs} ratio={ratio}"
        if name in results["cases"]:
            continue
        cfg = DefenseConfig(method=args.method, epochs=args.epochs, poison_ratio=ratio)
        result, _ = defend(ws.run.model, ws.run.trigger, ws.run.target, ws.modeling, ws.held_out, cfg, generators,
                           on_progress=log(f"ratio {ratio}"))
        results["cases"][name] = {"before": result["before"], "after": result["after"], "history": result["history"],
                                  "seconds": result["seconds"], "machine": machine()}
        atomic.write_json(RESULT, results)
        print(f"{name}: ASR {result['before']['asr']:.3f} -> {result['after']['asr']:.3f}, clean "
              f"{result['before']['clean_acc']:.3f} -> {result['after']['clean_acc']:.3f}", flush=True)


def table(results: dict) -> str:
    lines = ["| case | method | epochs | poison ratio | ASR before -> after | clean before -> after | time |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results["cases"].items():
        case, method, epochs, ratio = name.split(" ")
        lines.append(f"| {case} | {method} | {epochs.split('=')[1]} | {ratio.split('=')[1]} | "
                     f"{r['before']['asr']:.3f} -> {r['after']['asr']:.3f} | "
                     f"{r['before']['clean_acc']:.3f} -> {r['after']['clean_acc']:.3f} | {r['seconds']:.0f} s |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
