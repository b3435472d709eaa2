"""Does the classroom demo show the paper's contrast? The demo preset's whole pipeline (attack ->
MESA -> pixel-SGD baseline -> defenses with their census) over several triggers and seeds on the
embedded data: what each defense leaves of the planted trigger and of the 512-pattern census.

    python bench/demo_contrast.py [--cases binary:170:0 binary:7:0 color:1:3] [--seeds 0 1]
    python bench/demo_contrast.py --table      # record: docs/results/demo_contrast.json

Resumable: each (trigger, target, seed) is saved as it finishes and skipped when rerun.
"""
import argparse
import copy
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from mesa import atomic  # noqa: E402
from mesa.lab.pipeline import presets  # noqa: E402
from mesa.lab.jobs.tasks import pipeline_work  # noqa: E402

RESULT = Path(__file__).resolve().parents[1] / "docs" / "results" / "demo_contrast.json"
DEMO = "CPU classroom demo"
CASES = ["binary:170:0", "binary:7:0", "binary:16:0", "color:1:3"]


def run_case(preset: dict, trigger: str, target: int, seed: int) -> dict:
    preset = copy.deepcopy(preset)
    preset["attack"].update(trigger=trigger, target=target, seed=seed)
    preset["search"]["seed"] = preset["baseline"]["seed"] = seed
    out = pipeline_work(presets.attack_config(preset), presets.search_config(preset), presets.defense_configs(preset),
                        presets.baseline_config(preset), presets.census_config(preset))(lambda p: None, lambda: False)
    return {"attack": out["metrics"], "defenses": {d["method"]: {k: d[k] for k in ("before", "after", "worst_asr", "census")}
                                                   for d in out["defenses"]}}


def table(record: dict) -> str:
    lines = ["| case | before: ASR / open | " + " | ".join(f"{m}: ASR (worst) / open / highest census ASR"
                                                       for m in record["methods"]) + " |",
             "|---|---|" + "---|" * len(record["methods"])]
    for key, case in record["cases"].items():
        d = case["defenses"]
        first = next(iter(d.values()))
        cells = [key, f"{first['before']['asr']:.3f} / {first['census']['before']['open']}"]
        for m in record["methods"]:
            r = d[m]
            cells.append(f"{r['after']['asr']:.3f} ({r['worst_asr']:.3f}) / {r['census']['after']['open']} / "
                         f"{r['census']['after']['worst_asr']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", nargs="+", default=CASES, help="TRIGGER:TARGET, e.g. binary:7:0 or color:1:3")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    preset = presets.builtin()[DEMO]
    record = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    if record.get("settings") != preset:  # a changed demo starts a new record
        record = {"settings": preset, "methods": preset["defense"]["methods"], "cases": {}}
    if not args.table:
        os.environ.setdefault("MESA_RUNS", tempfile.mkdtemp(prefix="mesa-contrast-"))
        for case in args.cases:
            trigger, _, target = case.rpartition(":")
            for seed in args.seeds:
                key = f"{trigger}->{target} seed {seed}"
                if key in record["cases"]:
                    continue
                record["cases"][key] = {**run_case(preset, trigger, int(target), seed), "machine": machine()}
                atomic.write_json(RESULT, record)
                print(f"{key} done", flush=True)
    print(table(record))


if __name__ == "__main__":
    main()
