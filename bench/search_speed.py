"""MESA step time divided by the bare classifier's training step time (forward + backward with
weight gradients) at the same batch size; the goal is <= 1.15.

    python bench/search_speed.py [--model small|resnet18] [--device auto] [--steps 30] [--repeats 5]

Both are timed in alternating rounds (so a busy machine slows both alike) and the ratio of
medians is reported; results are appended to docs/results/search_speed.json.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from mesa import atomic  # noqa: E402
from mesa.device import resolve_device  # noqa: E402
from mesa.models import build_model  # noqa: E402
from mesa.method.search import SearchConfig, freeze, train_generator, unfreeze  # noqa: E402

RESULT = Path(__file__).resolve().parents[1] / "docs" / "results" / "search_speed.json"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_classifier(model, images, labels, steps, batch):
    unfreeze(model).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    start = time.perf_counter()
    for i in range(steps):
        x = images[(i * batch) % len(images):][:batch].float() / 255
        loss = F.cross_entropy(model(x), labels[:len(x)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(images.device)
    return (time.perf_counter() - start) / steps


def time_search(model, images, labels, steps, batch):
    freeze(model)
    cfg = SearchConfig(betas=[0.9], epochs=1, batch_size=batch, log_every=10 ** 9)
    start = time.perf_counter()
    train_generator(model, images[:steps * batch], labels[:steps * batch], 0, 0.9, cfg, 10)
    sync(images.device)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="small")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = resolve_device(args.device)
    model = build_model(args.model, 10).to(device)
    n = args.steps * args.batch
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (n,), device=device)
    time_classifier(model, images, labels, 3, args.batch)  # warm-up
    time_search(model, images, labels, 3, args.batch)
    bare, mesa = [], []
    for _ in range(args.repeats):
        bare.append(time_classifier(model, images, labels, args.steps, args.batch))
        mesa.append(time_search(model, images, labels, args.steps, args.batch))
    record = {"model": args.model, "device": str(device), "batch": args.batch,
              "classifier_step_ms": round(1000 * statistics.median(bare), 1),
              "mesa_step_ms": round(1000 * statistics.median(mesa), 1),
              "ratio": round(statistics.median(mesa) / statistics.median(bare), 3), "machine": machine()}
    print(json.dumps(record))
    history = json.loads(RESULT.read_text()) if RESULT.exists() else []
    atomic.write_json(RESULT, history + [record])


if __name__ == "__main__":
    main()
