"""The paper's experiment on the real CIFAR-10 copy (the small model, or `--model fastnet`, the strong
one, each fine-tuned from its shipped clean base), through the sweep engine
(`python -m mesa sweep`): one clean base (shipped, else trained once); per trigger, the attack fine-tunes it, MESA
search, the pixel-SGD baseline, every defense, each with the census of the 512 black-white 3x3
patterns (what is still open after it) and the floor census of the clean base.

    python bench/defense_cifar10.py            # the 8 cases, every registered method, stamped fraction 0.5
    python bench/defense_cifar10.py --cases 4 --poison-ratio 0.01 --methods ensemble mesa:0.9 pixel-sgd
    python bench/defense_cifar10.py --cases 1 --recipe paper --poison-ratio 0.01   # the reference attack
    python bench/defense_cifar10.py --cases 1 --poison-ratio 0.01 --no-defense-augment
    python bench/defense_cifar10.py --model fastnet --cases 4 --recipe paper --poison-ratio 0.01
    python bench/defense_cifar10.py --table [the same flags]                       # print, run nothing

Resumable at every stage: the sweep's folder ($MESA_BENCH_OUT/sweep-c10, default ~/.cache/mesa-lab)
keeps every stage of every case, shared with `python -m mesa sweep --triggers canonical` on the same
folder (the six black-white cases are among the 51). After each run the table's record is copied to
docs/results/cifar10-MODEL-NAME.json, which `--table` reads on a machine without the runs (each model
has its own sweep folder: sweep-c10 for small, sweep-c10-fastnet, ...).
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CIFAR_FOLDER, cifar10_folder  # noqa: E402

from mesa.lab.sweep.plan import ATTACK_RECIPES, SweepConfig  # noqa: E402
from mesa.lab.sweep.run import run_sweep  # noqa: E402
from mesa.lab.sweep.table import render, table_name  # noqa: E402
from mesa.method import registry  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# outside the work tree, so runs survive a fresh checkout and resume in a later session
OUT = Path(os.environ.get("MESA_BENCH_OUT", Path.home() / ".cache" / "mesa-lab")) / "sweep-c10"

# ordered so that any first N cases are useful on their own: the first four (the ones run at the lower
# stamped fractions) hold binary:7 and a colour trigger with a target other than 0
CASES = [("binary:170", 0), ("binary:7", 0), ("color:1", 3), ("binary:16", 0), ("binary:84", 0),
         ("binary:186", 0), ("color:2", 7), ("binary:94", 0)]


def every_method() -> list[str]:
    """Every registered defense, a family once per beta of the sweep's search (mesa:0.5, mesa:0.8, ...)."""
    searched = {"betas": [{"beta": b} for b in SweepConfig(out="").betas]}  # the shape of a saved search
    return [m for d in registry.defenses().values() for m in (d.choices(searched) if d.choices else [d.name])]


def record_path(cfg: SweepConfig) -> Path:
    return ROOT / "docs" / "results" / f"cifar10-{cfg.models[0]}-{table_name(cfg)}.json"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", default="small", choices=["small", "fastnet", "resnet18"],
                        help="small and fastnet start from their shipped clean bases (assets/bases); resnet18 trains one")
    parser.add_argument("--cases", type=int, default=len(CASES), help="only the first N cases")
    parser.add_argument("--methods", nargs="+", default=every_method(), help="defenses to run (default: all)")
    parser.add_argument("--poison-ratio", type=float, default=SweepConfig.defense_poison_ratio,
                        help="share of images stamped while retraining")
    parser.add_argument("--recipe", default="ours", choices=list(ATTACK_RECIPES),
                        help="the attack: ours (3 epochs, lr 0.01, 3%% poison), the reference code's "
                             "(10 epochs, lr 1e-3, 1%% poison) or ours-1pct (ours at 1%% poison)")
    parser.add_argument("--no-defense-augment", dest="defense_augment", action="store_false",
                        help="retrain without crop + flip, as the reference code does")
    parser.add_argument("--table", action="store_true", help="print the saved table, run nothing")
    args = parser.parse_args()
    cases = CASES[:args.cases]
    out = OUT if args.model == "small" else OUT.with_name(f"{OUT.name}-{args.model}")
    cfg = SweepConfig(out=str(out), models=[args.model], data=[f"folder:{CIFAR_FOLDER}"],
                      triggers=[t for t, _ in cases], targets=[target for _, target in cases], defenses=args.methods,
                      defense_poison_ratio=args.poison_ratio, defense_augment=args.defense_augment,
                      attack_recipe=args.recipe, device=args.device)
    record = record_path(cfg)
    if not args.table:
        cifar10_folder()  # extracted from ../shared on first use
        result = run_sweep(cfg)
        record.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(result["table"]).with_suffix(".json"), record)
    if not record.is_file():
        raise SystemExit(f"no record at {record}: run the benchmark with these flags first")
    results = json.loads(record.read_text())
    print(render(results, results["settings"]["defenses"]), end="")


if __name__ == "__main__":
    main()
