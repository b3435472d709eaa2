"""Neural Cleanse and unlearning on the embedded data, before they are wired into the stages: NC's
detection, retraining with NC's reversed trigger stamped (labels kept), and unlearning by gradient
ascent on the planted trigger and on MESA's samples. Planted-trigger ASR on the held-out 20%.

    python bench/nc_unlearn_synthetic.py [--run RUN] [--epochs 3] [--mesa]

`retrain` (mesa/method/defense.py) stamps k x k triggers through StampFraction, which cannot blend a
full-image mask, so the retraining here is retrain's own loop (train_classifier, the defense's
TrainConfig, the same stamped fraction) with a transform that blends NC's (mask, pattern).
"""
import argparse
import copy
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mesa.lab.pipeline.attack_stage import run_attack  # noqa: E402
from mesa.lab.storage.workspace import open_run  # noqa: E402
from mesa.method.attack import AttackConfig  # noqa: E402
from mesa.method.defense import DefenseConfig, generator_sampler  # noqa: E402
from mesa.method.metrics import evaluate  # noqa: E402
from mesa.method.neural_cleanse import NeuralCleanseConfig, apply_trigger, neural_cleanse  # noqa: E402
from mesa.method.poison import fixed_sampler, fraction_count  # noqa: E402
from mesa.method.search import SearchConfig, search  # noqa: E402
from mesa.method.unlearn import UnlearnConfig, unlearn  # noqa: E402
from mesa.train import train_classifier  # noqa: E402


class BlendFraction:
    """Blend (mask, pattern) into a fraction of each batch, labels kept: NC's unlearning set."""

    def __init__(self, mask, pattern, ratio: float, seed: int = 0):
        self.mask, self.pattern, self.ratio, self.rng = mask, pattern, ratio, random.Random(seed)

    def __call__(self, x, y):
        n = fraction_count(self.ratio, len(y), self.rng)
        return torch.cat([apply_trigger(x[:n], self.mask.to(x.device), self.pattern.to(x.device)), x[n:]]), y


def measured(model, ws) -> dict:
    m = evaluate(model, *ws.held_out, ws.run.trigger, ws.run.target)
    return {k: m[k] for k in ("asr", "asr_images", "asr_ci", "clean_acc", "clean_acc_images", "clean_acc_ci")}


def retrain_with_mask(ws, mask, pattern, cfg: DefenseConfig) -> dict:
    with torch.no_grad():
        defended = copy.deepcopy(ws.run.model)
    for p in defended.parameters():
        p.requires_grad_(True)
    train_classifier(defended, *ws.modeling, cfg.train_config(), batch_transform=BlendFraction(mask, pattern, cfg.poison_ratio))
    return measured(defended, ws)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--mesa", action="store_true", help="also unlearn from MESA's samples (runs a search)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    run = args.run or str(run_attack(AttackConfig(data="synthetic", epochs=3, out=tempfile.mkdtemp()))[0])
    ws = open_run(run, "cpu")
    out = {"run": run, "before": measured(ws.run.model, ws)}

    t = time.time()
    nc = neural_cleanse(ws.run.model, *ws.modeling, ws.run.config["num_classes"], NeuralCleanseConfig(), *ws.held_out)
    out["neural_cleanse"] = {**nc.summary(), "seconds": round(time.time() - t, 1)}
    label = nc.suspect if nc.suspect is not None else ws.run.target
    t = time.time()
    out["retrain_nc"] = {**retrain_with_mask(ws, *nc.trigger(label), DefenseConfig(method="original", epochs=args.epochs)),
                         "label": label, "seconds": round(time.time() - t, 1)}

    cfg = UnlearnConfig(epochs=args.epochs)
    t = time.time()
    model, history = unlearn(ws.run.model, *ws.modeling, fixed_sampler(ws.run.trigger), ws.run.target, cfg)
    out["unlearn_true_trigger"] = {**measured(model, ws), "history": history, "seconds": round(time.time() - t, 1)}
    if args.mesa:
        found = search(ws.run.model, *ws.modeling, ws.run.target, SearchConfig(epochs=10), ws.run.config["num_classes"])
        for r in found:
            t = time.time()
            model, history = unlearn(ws.run.model, *ws.modeling, generator_sampler(r.generator), ws.run.target, cfg)
            out[f"unlearn_mesa_{r.beta:g}"] = {**measured(model, ws), "samples_mean_asr": r.samples_asr.mean().item(),
                                              "history": history, "seconds": round(time.time() - t, 1)}
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
