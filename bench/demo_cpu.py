"""Time the app's one-click full demo (the "CPU classroom demo" preset: attack -> MESA search ->
pixel-SGD baseline -> defenses with their census, on the embedded data), through the same job
function the Overview page runs; with --data, the live demo on real CIFAR-10 ("CIFAR-10 live demo":
the same stages from the shipped clean base).

    python bench/demo_cpu.py                                      # record appended to docs/results/demo_cpu.json
    python bench/demo_cpu.py --data folder:$HOME/.cache/cifar10-jpg   # the live demo, same record
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from mesa import atomic  # noqa: E402
from mesa.lab.pipeline import presets  # noqa: E402
from mesa.lab.jobs.tasks import pipeline_work  # noqa: E402

RESULT = Path(__file__).resolve().parents[1] / "docs" / "results" / "demo_cpu.json"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="cifar10 or folder:PATH: the live demo on it")
    args = parser.parse_args()
    name = presets.LIVE_DEMO if args.data else presets.CLASSROOM_DEMO
    preset = presets.builtin()[name]
    if args.data:
        preset = {**preset, "attack": {**preset["attack"], "data": presets.live_data(args.data)}}
    os.environ.setdefault("MESA_RUNS", tempfile.mkdtemp(prefix="mesa-demo-"))
    stages = {}

    def on_progress(p):
        name = p.stage.split(" ")[0]
        stages.setdefault(name, time.time())

    start = time.time()  # the data's load counts (from its decoded cache after the first time)
    out = pipeline_work(presets.attack_config(preset), presets.search_config(preset), presets.defense_configs(preset),
                        presets.baseline_config(preset), presets.census_config(preset))(on_progress, lambda: False)
    total = time.time() - start
    record = {"preset": name, "settings": preset, "total_seconds": round(total, 1),
              "stage_start_seconds": {k: round(v - start, 1) for k, v in stages.items()},
              "attack": out["metrics"], "search": out["search"]["betas"], "baseline": out.get("baseline"),
              "defenses": [{k: d[k] for k in ("method", "before", "after", "worst_asr", "census") if k in d}
                           for d in out["defenses"]], "machine": machine()}
    print(json.dumps(record))
    history = json.loads(RESULT.read_text()) if RESULT.exists() else []
    atomic.write_json(RESULT, history + [record])


if __name__ == "__main__":
    main()
