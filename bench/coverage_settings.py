"""How much of the valid set does MESA's search reach, and does a wider spread defend better?
Issue "How much of the distribution", part 2: each setting of the search (alpha, steps, the noise
added to triggers, MINE's moving-average rate) is searched afresh on a copy of a run, its coverage
measured against the run's census (mesa/method/coverage.py), then mesa:0.9 defends at the paper's 1%
stamped fraction and at the default, each with the census of what it leaves. Steps are counted as
the paper's (its reference: 620 per beta), whatever the size of the run's modeling split.

    python bench/coverage_settings.py [--settings NAME ...] [--table]
        the shipped embedded run (assets/runs/ready-synthetic-small-binary170-t0), 3 defense epochs
    python bench/coverage_settings.py --run RUN --name CASE --defense-epochs 10 [--settings ...]
        another run with its census saved (a CIFAR-10 sweep case's), recorded as coverage_settings-CASE.json

Each setting is saved to docs/results/coverage_settings[-CASE].json as it finishes and skipped when rerun.
"""
import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from mesa import atomic  # noqa: E402
from mesa.lab.pipeline.stages import open_run, run_defense, run_search  # noqa: E402
from mesa.lab.storage.artifacts import load_search  # noqa: E402
from mesa.lab.storage.ready_runs import SHIPPED  # noqa: E402
from mesa.method.defense import DefenseConfig  # noqa: E402
from mesa.method.search import SearchConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
RUN = SHIPPED / "ready-synthetic-small-binary170-t0"
SETTINGS = {
    "shipped (alpha 0.1, 60 steps)": {"steps": 60},
    **{name: {"betas": [0.9], "steps": 600, **change} for name, change in {
        "paper steps (alpha 0.1, 600 steps)": {},
        "alpha 0": {"alpha": 0.0},
        "alpha 1": {"alpha": 1.0},
        "alpha 10": {"alpha": 10.0},
        "noise 0": {"noise_std": 0.0},
        "noise 0.3": {"noise_std": 0.3},
        "MINE rate 0.01": {"mine_rate": 0.01},
    }.items()},
}  # each G_beta trains on its own from the same seed: beta 0.9 alone is the same generator as in a staircase
FRACTIONS = (0.01, 0.5)  # the paper's stamped fraction, and the product's default


def saturation(samples) -> float:
    """Mean |2x - 1| of the samples' pixels: 1 when every pixel is pure black or white."""
    return (samples.float() * 2 - 1).abs().mean().item()


def search_config(setting: dict, images: int) -> SearchConfig:
    """The setting with its steps as whole epochs over `images` modeling images (at least one)."""
    per_epoch = max(1, images // SearchConfig.batch_size)
    options = {k: v for k, v in setting.items() if k != "steps"}
    return SearchConfig(**options, epochs=max(1, round(setting["steps"] / per_epoch)))


def run_setting(name: str, run: Path, work: Path, defense_epochs: int) -> dict:
    folder = work / name.replace(" ", "-").replace("(", "").replace(")", "").replace(",", "")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(run, folder)
    ws = open_run(folder)
    cfg = search_config(SETTINGS[name], len(ws.modeling[1]))
    start = time.time()
    searched = run_search(ws, cfg)
    found = load_search(folder, ws.data.train_images.device)
    betas = []
    for summary in searched["betas"]:
        samples = found["betas"][summary["beta"]]["samples"]
        betas.append({k: summary.get(k) for k in ("beta", "mean_asr", "above_half", "final_mi", "steps", "distinct",
                                                  "modes", "hit", "open", "coverage", "open_share")}
                     | {"saturation": round(saturation(samples), 3)})
    defenses = {}
    for fraction in FRACTIONS:
        result = run_defense(ws, DefenseConfig(method="mesa:0.9", epochs=defense_epochs, poison_ratio=fraction))
        after = result["after"]
        census = result.get("census", {}).get("after", {})
        defenses[str(fraction)] = {"asr": after.get("asr"), "asr_ci": after.get("asr_ci"),
                                   "asr_images": after.get("asr_images"), "clean_acc": after.get("clean_acc"),
                                   "open": census.get("open"), "worst_asr": census.get("worst_asr"),
                                   "worst_asr_ci": census.get("worst_asr_ci")}
    return {"setting": name, "config": SETTINGS[name], "epochs": cfg.epochs, "defense_epochs": defense_epochs,
            "betas": betas, "mesa:0.9": defenses,
            "seconds": round(time.time() - start, 1), **machine()}


def table(results: dict) -> str:
    """The docs/RESULTS.md table: one row per setting, beta 0.9's coverage, then what mesa:0.9 leaves."""
    first = next(iter(results.values()))["betas"]
    opened = next((x.get("open") for x in first if x["beta"] == 0.9), None)
    rows = [f"| setting (G_0.9) | distinct / modes | open patterns hit (of {opened}) | sample ASR | saturation "
            "| mesa:0.9 at 1%: planted ASR, open (highest) | at 0.5: planted ASR, open (highest) |",
            "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        b = next(x for x in r["betas"] if x["beta"] == 0.9)
        hit = f"{b['hit']} ({b['hit'] / b['open']:.0%})" if b.get("open") else "no census"
        cells = []
        for f in ("0.01", "0.5"):
            d = r["mesa:0.9"][f]
            cells.append(f"{d['asr']:.3f} ({d['asr_ci'][0]:.3f}-{d['asr_ci'][1]:.3f}), {d['open']} ({d['worst_asr']:.3f})")
        rows.append(f"| {name} | {b['distinct']} / {b['modes']:.1f} | {hit} | {b['mean_asr']:.3f} | "
                    f"{b['saturation']:.2f} | {cells[0]} | {cells[1]} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--work", default=str(ROOT / "bench" / "out" / "coverage"))
    parser.add_argument("--run", default=str(RUN), help="a run with its census saved (default: the shipped one)")
    parser.add_argument("--name", default=None, help="the case's name in the record's file name (with --run)")
    parser.add_argument("--defense-epochs", type=int, default=3)
    parser.add_argument("--table", action="store_true", help="print the table of what is recorded, run nothing")
    args = parser.parse_args()
    result = RESULTS / (f"coverage_settings-{args.name}.json" if args.name else "coverage_settings.json")
    results = json.loads(result.read_text()) if result.is_file() else {}
    if not args.table:
        for name in args.settings:
            if name in results:
                continue
            results[name] = run_setting(name, Path(args.run), Path(args.work) / (args.name or "shipped"),
                                        args.defense_epochs)
            atomic.write_json(result, results)
            print(f"{name}: {results[name]['seconds']} s", flush=True)
    print(table({k: results[k] for k in SETTINGS if k in results}))


if __name__ == "__main__":
    main()
