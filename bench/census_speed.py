"""Time the census, adaptive (the default) against exhaustive, in one run: all 512 black-white 3x3
patterns on 256 images each, on the app's ready run (the small model backdoored on the embedded data)
and on its ensemble-defended model; then the 4,096-trigger colour family, adaptive. The two censuses
alternate in the same process, so their ratio holds on a shared machine. Goals: >= 4x on the defended
model, >= 2x on the backdoored one, open counts within 3% of the exhaustive count plus 2, and the
colour family in <= 30 s on 2 cores.

    python bench/census_speed.py [--device cpu|cuda] [--repeats 1]   # record: docs/results/census_speed.json
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from mesa import atomic  # noqa: E402
from mesa.lab.pipeline.stages import defended_model, open_run  # noqa: E402
from mesa.method.census import CensusConfig, summarize, take_census  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "docs" / "results" / "census_speed.json"
READY = next((ROOT / "assets" / "runs").iterdir())


def timed(ws, model, cfg: CensusConfig) -> tuple[float, dict]:
    start = time.perf_counter()
    census = take_census(model, *ws.held_out, ws.data.num_classes, ws.run.target, cfg, ws.run.trigger)
    if ws.data.train_images.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, summarize(census)


def compare(ws, model, repeats: int) -> dict:
    """Exhaustive and adaptive alternated `repeats` times; their medians, ratio and verdicts."""
    runs = {"exhaustive": [], "adaptive": []}
    for _ in range(repeats):
        for name in runs:
            runs[name].append(timed(ws, model, CensusConfig(images=256, exhaustive=name == "exhaustive")))
    seconds = {name: statistics.median(s for s, _ in r) for name, r in runs.items()}
    (_, ex), (_, ad) = runs["exhaustive"][-1], runs["adaptive"][-1]
    allowed = 0.03 * ex["open"] + 2
    return {"exhaustive_seconds": round(seconds["exhaustive"], 2), "adaptive_seconds": round(seconds["adaptive"], 2),
            "speedup": round(seconds["exhaustive"] / seconds["adaptive"], 2),
            "open": {"exhaustive": ex["open"], "adaptive": ad["open"], "allowed_difference": allowed,
                     "agree": abs(ex["open"] - ad["open"]) <= allowed},
            "open_at": {"exhaustive": ex["open_at"], "adaptive": ad["open_at"]},
            "worst_asr": {"exhaustive": ex["worst_asr"], "adaptive": ad["worst_asr"]},
            "measured_images": {"exhaustive": ex["measured_images"], "adaptive": ad["measured_images"]}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    ws = open_run(READY, args.device)
    models = {"backdoored": ws.run.model, "defended (ensemble)": defended_model(ws, "ensemble")}
    take_census(ws.run.model, *ws.held_out, ws.data.num_classes, 0, CensusConfig(images=8, exhaustive=True))  # warm-up
    record = {"run": READY.name, "device": str(ws.data.train_images.device), "triggers": 512, "images": 256,
              "cases": {name: compare(ws, model, args.repeats) for name, model in models.items()}}
    colour_seconds, colour = timed(ws, ws.run.model, CensusConfig(family="color", images=256))
    record["color_4096_adaptive"] = {"seconds": round(colour_seconds, 2), "open": colour["open"],
                                     "measured_images": colour["measured_images"]}
    record["machine"] = machine()
    print(json.dumps(record))
    history = json.loads(RESULT.read_text()) if RESULT.exists() else []
    atomic.write_json(RESULT, history + [record])


if __name__ == "__main__":
    main()
