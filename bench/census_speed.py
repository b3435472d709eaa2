"""Time the census: all 512 black-white 3x3 patterns, each on 256 images, through the small model
(goal: <= 30 s on 2 idle CPU cores). Weights do not change the cost, so a fresh model is timed.

    python bench/census_speed.py [--device cpu|cuda] [--repeats 3]   # record: docs/results/census_speed.json
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
from mesa.method.census import CensusConfig, take_census  # noqa: E402
from mesa.data import load_data  # noqa: E402
from mesa.device import resolve_device  # noqa: E402
from mesa.models import build_model  # noqa: E402

RESULT = Path(__file__).resolve().parents[1] / "docs" / "results" / "census_speed.json"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", default="small")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_data("synthetic").to(device)
    model = build_model(args.model, data.num_classes, data.mean, data.std).to(device).eval()
    cfg = CensusConfig(images=256)
    take_census(model, data.test_images, data.test_labels, data.num_classes, 0, CensusConfig(images=8))  # warm-up
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        census = take_census(model, data.test_images, data.test_labels, data.num_classes, 0, cfg)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    record = {"model": args.model, "device": str(device), "triggers": len(census.names), "images": cfg.images,
              "seconds": [round(s, 2) for s in seconds], "median_seconds": round(statistics.median(seconds), 2),
              "machine": machine()}
    print(json.dumps(record))
    history = json.loads(RESULT.read_text()) if RESULT.exists() else []
    atomic.write_json(RESULT, history + [record])


if __name__ == "__main__":
    main()
