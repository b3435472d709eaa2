"""Train a clean classifier from scratch with its model's recipe and record accuracy, wall time and
images/s with the machine (CPU model and its bf16 flags) in docs/results/train_speed.json.

    python bench/train_speed.py [--model fastnet] [--epochs 16] [--precision auto|fp32|bf16]
                                [--data folder:PATH] [--ship assets/bases] [--widths 96 384 384]
                                [--record PATH]

Default data: the JPEG copy of CIFAR-10 from ../shared (bench/common.py). `--ship FOLDER` also saves
the trained model there as a run named `cifar10-<model>` in half precision: the shipped clean base
that `attack --init` starts from. `--widths` tries fastnet's three groups at other widths (a
measurement only: such a net is not a model the product builds, so it cannot be shipped).
"""
import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cifar10_folder, machine  # noqa: E402

from mesa import atomic  # noqa: E402
from mesa.data import load_data  # noqa: E402
from mesa.device import resolve_device, uses_bf16  # noqa: E402
from mesa.lab.storage.runs import load_run, save_run  # noqa: E402
from mesa.method.metrics import evaluate  # noqa: E402
from mesa.fast_net import FastNet  # noqa: E402
from mesa.models import Classifier, build_model  # noqa: E402
from mesa.train import TrainConfig, train_classifier  # noqa: E402
from mesa.training_recipes import recipe  # noqa: E402

RESULT = Path(__file__).resolve().parents[1] / "docs" / "results" / "train_speed.json"


def cpu_flags() -> list[str]:
    try:
        flags = next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split(":", 1)[1].split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if f.startswith(("amx", "avx512_bf16", "avx512_fp16", "avx2")))


def wilson(correct: int, n: int, z: float = 1.96) -> list[float]:
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 4), round(centre + half, 4)]


def ship(folder: Path, model, data, config: dict, metrics: dict, history: list) -> Path:
    """The clean base as a run, its weights in half precision (a few MB), checked to reload."""
    name = f"cifar10-{config['model']}"
    shutil.rmtree(folder / name, ignore_errors=True)
    path = save_run(folder, config, model, None, metrics, history, name=name)
    half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    atomic.write_torch(path / "model.pt", {k: v.detach().cpu() for k, v in half.items()})
    reloaded = load_run(path, data.test_images.device).model
    check = evaluate(reloaded, data.test_images, data.test_labels, None, None)
    print(f"shipped {path}: clean accuracy after the half-precision round trip {check['clean_acc']:.4f}")
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fastnet")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--data", default=None, help="default: the CIFAR-10 JPEG copy (folder:...)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ship", default=None, help="save the trained model as a clean base run in this folder")
    ap.add_argument("--widths", type=int, nargs=3, default=None, help="fastnet's group widths (default 64 256 256)")
    ap.add_argument("--record", default=str(RESULT), help="the JSON list the record is added to")
    args = ap.parse_args(argv)
    if args.widths and (args.model != "fastnet" or args.ship):
        ap.error("--widths is for fastnet and is not shipped")
    device = resolve_device(args.device)
    spec = args.data or f"folder:{cifar10_folder()}"
    data = load_data(spec)
    model = (Classifier(FastNet(data.num_classes, tuple(args.widths)), data.mean, data.std) if args.widths
             else build_model(args.model, data.num_classes, data.mean, data.std)).to(device)
    data = data.to(device)
    model.init_from_data(data.train_images)
    cfg = TrainConfig(**{**recipe(args.model), "epochs": args.epochs, "precision": args.precision, "seed": args.seed})
    start, epoch_ends = time.time(), {}

    def log(p):
        if p.values.get("clean_acc") is not None and p.epoch not in epoch_ends:
            epoch_ends[p.epoch] = round(time.time() - start, 1)
            print(f"epoch {p.epoch}: {json.dumps(p.values)} ({epoch_ends[p.epoch]:.0f} s)", flush=True)

    history = train_classifier(model, data.train_images, data.train_labels, cfg,
                               evaluate=lambda m: evaluate(m, data.test_images, data.test_labels, None, None),
                               on_progress=log)
    seconds = time.time() - start
    for record in history:  # when each epoch ended: a paused or shared machine shows as uneven steps
        record["wall_seconds"] = epoch_ends.get(record["epoch"])
    final = evaluate(model, data.test_images, data.test_labels, None, None)
    n = len(data.test_labels)
    correct = round(final["clean_acc"] * n)
    record = {"model": args.model, "widths": args.widths, "parameters": sum(p.numel() for p in model.parameters()),
              "data": spec, "epochs": args.epochs, "precision": args.precision,
              "bf16": uses_bf16(args.precision, device), "device": str(device), "train": cfg.to_dict(),
              "clean_acc": final["clean_acc"], "clean_correct": correct, "test_images": n,
              "clean_acc_ci": wilson(correct, n), "seconds": round(seconds, 1),
              "images_per_s": round(cfg.epochs * (len(data.train_labels) // cfg.batch_size) * cfg.batch_size / seconds, 1),
              "cpu_flags": cpu_flags(), "history": history, **machine()}
    print(json.dumps({k: v for k, v in record.items() if k != "history"}))
    out = Path(args.record)
    records = json.loads(out.read_text()) if out.exists() else []
    atomic.write_json(out, records + [record])
    if args.ship:
        config = {"kind_of_run": "clean base", "data": "cifar10", "trained_on": spec, "model": args.model,
                  "trigger": None, "target": None, "num_classes": data.num_classes, "classes": data.classes,
                  "mean": list(data.mean), "std": list(data.std), "image_size": data.image_size,
                  "train": cfg.to_dict(), "made_by": "python bench/train_speed.py " + " ".join(argv or sys.argv[1:])}
        ship(Path(args.ship), model, data, config, {**final, "clean_acc_ci": record["clean_acc_ci"]}, history)


if __name__ == "__main__":
    main()
