"""Probe one trigger: its ASR on the run's backdoored model and on every saved defended model, with
stamped examples, so a student can ask "would *this* trigger open the backdoor?" and see the answer
at once: 256 images through each model, BatchNorm folded (bench/probe_speed.py: about 0.13 s a
`small` model on 2 CPU cores, so about a second for the CIFAR-10 run's nine).

Every model is asked the same question: the same held-out images outside the target class, each
with the same seeded place for the trigger, so the answers compare across models and triggers.
"""
from dataclasses import dataclass

import torch

from mesa.lab.storage import artifacts
from mesa.lab.pipeline import stages
from mesa.method.census import fast_autocast, inference_copy
from mesa.data import ImageData
from mesa.errors import MesaError
from mesa.method.triggers import random_locations, stamp

BACKDOORED = "backdoored"  # the run's own model, beside each defense's method name


@dataclass
class Probe:
    models: dict  # name -> model in eval mode: BACKDOORED, then each defense that kept its weights
    images: torch.Tensor  # M x 3 x H x W floats in [0, 1], none of the target class
    labels: torch.Tensor
    locations: torch.Tensor  # M x 2: where the trigger goes on each image
    target: int
    classes: list[str]
    no_trigger: dict  # name -> share of the clean images already sent to the target (the floor)


@dataclass
class Answer:
    asr: dict  # name -> ASR of the trigger on that model
    examples: torch.Tensor  # the first few stamped images (floats)
    labels: list[int]  # their true classes
    predictions: dict  # name -> predicted classes of the examples


def kept_defenses(run_path) -> list[str]:
    """Every defended model the run keeps: METHOD, or METHOD-I for copy I of a per-trigger defense."""
    return list(artifacts.kept_models(run_path))


def open_probe(run_path, data: ImageData | None = None, images: int = 256, k: int = 3, seed: int = 0,
               device="cpu") -> Probe:
    """Load the run, its defended models and `images` held-out images (the defense split's 20%)."""
    ws = stages.open_run(run_path, device, data)
    target = stages.need_target(ws)
    x, y = ws.held_out
    keep = y != target
    x, y = x[keep][:images].float() / 255, y[keep][:images]
    if len(x) == 0:
        raise MesaError(f"run {run_path} has no held-out images outside the target class to probe on")
    g = torch.Generator(device=x.device).manual_seed(seed)
    locations = random_locations(len(x), x.shape[-1], k, x.device, g)
    models = {BACKDOORED: ws.run.model, **{m: stages.defended_model(ws, m) for m in kept_defenses(run_path)}}
    models = {name: inference_copy(model) for name, model in models.items()}
    probe = Probe(models, x, y, locations, target, ws.run.config["classes"], {})
    probe.no_trigger = {name: (p == target).float().mean().item() for name, p in _predict(probe, x).items()}
    return probe


@torch.inference_mode()
def _predict(probe: Probe, x: torch.Tensor) -> dict:
    out = {}
    for name, model in probe.models.items():
        with fast_autocast(x.device):
            out[name] = model(x).argmax(1)
    return out


def ask(probe: Probe, trigger: torch.Tensor, examples: int = 6) -> Answer:
    """The trigger (3 x k x k in [0, 1]) stamped on every probe image, in one pass per model."""
    if trigger.dim() != 3 or trigger.shape[0] != 3:
        raise MesaError(f"a trigger is 3 x k x k, got {tuple(trigger.shape)}")
    stamped = stamp(probe.images, trigger.to(probe.images), _fit(probe, trigger.shape[-1]))
    preds = _predict(probe, stamped)
    return Answer({n: (p == probe.target).float().mean().item() for n, p in preds.items()}, stamped[:examples].cpu(),
                  probe.labels[:examples].tolist(), {n: p[:examples].tolist() for n, p in preds.items()})


def _fit(probe: Probe, k: int) -> torch.Tensor:
    """The probe's places, moved in so a k x k trigger fits (they were drawn for the probe's k)."""
    return probe.locations.clamp(max=probe.images.shape[-1] - k)
