"""The retraining every stamping defense shares: a copy of the backdoored model trained on the
defender's images with a fraction of each batch stamped, labels kept. A defense's entry says what is
stamped (`stamps`); a per-trigger one retrains one copy per trigger of its method (each baseline restart)."""
import copy
from dataclasses import replace
from typing import Callable

import torch

from mesa.method.defense import Defended, DefenseConfig, DefenseInputs
from mesa.method.metrics import evaluate
from mesa.method.poison import Sampler, StampFraction, Stamper
from mesa.method.triggers import parse_location
from mesa.progress import ProgressFn, ignore
from mesa.train import train_classifier

EpochStamps = Callable[[int], Sampler | Stamper | None]  # epoch -> what its batches are stamped with


def retrain(model, stamps: EpochStamps, inputs: DefenseInputs, cfg: DefenseConfig, on_progress: ProgressFn = ignore,
            stage: str = "defend", should_stop=lambda: False) -> tuple[torch.nn.Module, list[dict], dict]:
    """Retrain a copy of `model`; returns (defended model, per-epoch history, final held-out metrics)."""
    with torch.no_grad():  # a TorchScript body copied with grad on would get non-leaf parameters
        defended = copy.deepcopy(model)
    for p in defended.parameters():
        p.requires_grad_(True)
    location = parse_location(cfg.location)
    transform = StampFraction(stamps(0), cfg.poison_ratio, cfg.seed, location=location)

    def epoch_start(epoch):
        transform.sampler = stamps(epoch)

    def measure(m, intervals=False):  # per epoch the rates alone; the final one with its intervals
        return evaluate(m, *inputs.held_out, inputs.trigger, inputs.target, location, intervals)

    history = train_classifier(defended, *inputs.modeling, cfg.train_config(), batch_transform=transform,
                               evaluate=measure, epoch_start=epoch_start, on_progress=on_progress, stage=stage,
                               should_stop=should_stop)
    return defended, history, measure(defended, True)


def retraining(entry, param, model, inputs: DefenseInputs, cfg: DefenseConfig, on_progress: ProgressFn = ignore,
               should_stop=lambda: False, inspect=None) -> Defended:
    """A stamping defense's run: one retrained copy, or one per trigger of its method (`per_trigger`)."""
    stage = f"defend {cfg.method}"
    if not entry.per_trigger:
        defended, history, after = retrain(model, entry.stamps(inputs, cfg, param), inputs, cfg, on_progress, stage,
                                           should_stop)
        return Defended(defended, after, history, inspections=[inspect(defended, None)] if inspect else [])
    chosen = inputs.made[:cfg.restarts or len(inputs.made)]
    per_trigger, histories, inspections, copies = [], [], [], []
    for i, made in enumerate(chosen):
        stamps = entry.stamps(replace(inputs, made=made), cfg, param)
        copy_i, history, after = retrain(model, stamps, inputs, cfg, on_progress, f"{stage} {i + 1}/{len(chosen)}",
                                         should_stop)
        if inspect is not None:
            inspections.append(inspect(copy_i, i))
        per_trigger.append(after)
        histories.append(history)
        copies.append(copy_i.eval())
        if should_stop():
            break
    asrs = [r["asr"] for r in per_trigger if "asr" in r]  # none without a planted trigger
    after = {"clean_acc": sum(r["clean_acc"] for r in per_trigger) / len(per_trigger)}
    return Defended(None, {**after, "asr": sum(asrs) / len(asrs)} if asrs else after, histories[0],
                    max(asrs) if asrs else None, per_trigger, histories, inspections, copies)
