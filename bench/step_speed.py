"""One training step (forward, backward, SGD) of each model at each precision, timed on random data:
whether this machine can train the strong model, and at which precision, before hours are spent on it.

    python bench/step_speed.py [--models fastnet small] [--batch 128] [--repeats 3]

Appends one record per machine to docs/results/step_speed.json: the median and range of the steps
after a warm-up, per model and precision, with the CPU and its bf16 flags. `bf16` is autocast as the
product trains (mesa.device); where the CPU lacks AVX-512 BF16 and AMX it is emulated, and slow.
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
from train_speed import cpu_flags  # noqa: E402

from mesa import atomic  # noqa: E402
from mesa.device import bf16_is_native, resolve_device  # noqa: E402
from mesa.models import build_model  # noqa: E402

RESULT = Path(__file__).resolve().parents[1] / "docs" / "results" / "step_speed.json"


def step_seconds(model, x, y, bf16: bool, repeats: int) -> list[float]:
    """Wall seconds of `repeats` training steps after one warm-up step."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["fastnet", "small"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    steps = []
    for name in args.models:
        for precision in ("fp32", "bf16"):
            times = step_seconds(build_model(name, 10).to(device), x, y, precision == "bf16", args.repeats)
            steps.append({"model": name, "precision": precision, "median_s": round(statistics.median(times), 3),
                          "min_s": round(min(times), 3), "max_s": round(max(times), 3)})
            print(json.dumps(steps[-1]), flush=True)
    record = {"batch": args.batch, "repeats": args.repeats, "device": str(device), "bf16_native": bf16_is_native(device),
              "cpu_flags": cpu_flags(), "steps": steps, **machine()}
    records = json.loads(RESULT.read_text()) if RESULT.exists() else []
    atomic.write_json(RESULT, records + [record])


if __name__ == "__main__":
    main()
