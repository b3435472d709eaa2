"""Defenses: retrain the backdoored model on the defender's images, stamping a fraction of each
batch with triggers while KEEPING their true labels, so the model unlearns trigger -> target.

Methods (what the stamped triggers are):
    mesa:BETA   fresh samples from the generator G_beta
    ensemble    G of every beta, cycled from epoch to epoch (highest beta first)
    pixel-sgd   one reversed trigger; each baseline restart defends its own copy of the model
    original    the attacker's true trigger (the ideal a defense can hope for)
    finetune    no trigger at all (the control: plain fine-tuning does not remove the backdoor)
"""
import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from mesa.errors import MesaError
from mesa.method.generator import sample_noise
from mesa.method.metrics import evaluate
from mesa.method.poison import Sampler, StampFraction, fixed_sampler
from mesa.progress import ProgressFn, ignore
from mesa.train import TrainConfig, train_classifier
from mesa.method.triggers import parse_location

METHODS = ("ensemble", "mesa:BETA", "pixel-sgd", "original", "finetune")


@dataclass
class DefenseConfig:
    method: str = "ensemble"
    epochs: int = 10
    poison_ratio: float = 0.5  # measured best of 0.01-0.5 on CIFAR-10 (docs/RESULTS.md)
    lr: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 128
    restarts: int | None = None  # pixel-sgd: how many baseline triggers to defend with (default: all)
    augment: bool = True  # crop + flip; the paper's reference code retrains without augmentation
    location: str | None = None  # where triggers are stamped: random or fixed:ROW,COL (stages: the run's)
    precision: str = "auto"  # bf16 autocast where the device runs it natively, or fp32 / bf16
    seed: int = 0

    def __post_init__(self):
        if not 0 <= self.poison_ratio <= 1:
            raise MesaError(f"poison ratio {self.poison_ratio} must be within [0, 1]")
        if self.epochs < 1:
            raise MesaError("defense epochs must be >= 1")
        parse_method(self.method)

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, schedule="constant",
                           momentum=self.momentum, weight_decay=0.0, seed=self.seed, augment=self.augment,
                           precision=self.precision)

    def to_dict(self) -> dict:
        return asdict(self)


def parse_method(method: str) -> tuple[str, float | None]:
    """('mesa', 0.9) for 'mesa:0.9'; (name, None) for the others."""
    if method.startswith("mesa:"):
        try:
            beta = float(method[5:])
        except ValueError:
            raise MesaError(f"bad method {method!r}: expected mesa:BETA, e.g. mesa:0.9") from None
        return "mesa", beta
    if method in ("ensemble", "pixel-sgd", "original", "finetune"):
        return method, None
    raise MesaError(f"unknown defense {method!r}: use {', '.join(METHODS)}")


def generator_sampler(gen, seed: int = 0, noise: str = "uniform") -> Sampler:
    """Fresh triggers from G (eval mode, no gradient) on every call."""
    device = next(gen.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    gen.eval()

    @torch.no_grad()
    def sample(n):
        return gen(sample_noise(n, gen.noise_dim, device, g, noise))

    return sample


def retrain(model, sampler_for_epoch: Callable[[int], Sampler | None], modeling, held_out, trigger, target: int,
            cfg: DefenseConfig, on_progress: ProgressFn = ignore, stage: str = "defend",
            should_stop=lambda: False) -> tuple[torch.nn.Module, list[dict], dict]:
    """Retrain a copy of `model`; returns (defended model, per-epoch history, final held-out metrics)."""
    with torch.no_grad():  # a TorchScript body copied with grad on would get non-leaf parameters
        defended = copy.deepcopy(model)
    for p in defended.parameters():
        p.requires_grad_(True)
    location = parse_location(cfg.location)
    transform = StampFraction(sampler_for_epoch(0), cfg.poison_ratio, cfg.seed, location=location)

    def epoch_start(epoch):
        transform.sampler = sampler_for_epoch(epoch)

    def measure(m, intervals=False):  # per epoch the rates alone; the final one with its intervals
        return evaluate(m, held_out[0], held_out[1], trigger, target, location, intervals)

    history = train_classifier(defended, modeling[0], modeling[1], cfg.train_config(), batch_transform=transform,
                               evaluate=measure, epoch_start=epoch_start, on_progress=on_progress, stage=stage,
                               should_stop=should_stop)
    return defended, history, measure(defended, True)


def defend(model, trigger, target: int, modeling, held_out, cfg: DefenseConfig, generators: dict | None = None,
           baseline_triggers: torch.Tensor | None = None, noise: str = "uniform",
           on_progress: ProgressFn = ignore, should_stop=lambda: False,
           inspect: Callable[[torch.nn.Module, int | None], dict] | None = None) -> tuple[dict, torch.nn.Module | None]:
    """Run one defense method. Returns (result dict, defended model; None for pixel-sgd's many copies).

    `generators` maps beta -> trained G (from the search); `baseline_triggers` are the pixel-SGD
    restarts. Metrics are measured on the held-out split, before and after. `inspect(model, restart)`
    looks at each defended model before it is dropped (the census of what it leaves open); its
    answer is kept as "inspection" (per restart for pixel-sgd).
    """
    name, beta = parse_method(cfg.method)
    device = modeling[0].device
    generators = generators or {}
    start = time.time()
    before = evaluate(model, held_out[0], held_out[1], trigger, target, parse_location(cfg.location))
    result = {"method": cfg.method, "config": cfg.to_dict(), "before": before}
    stage = f"defend {cfg.method}"
    if name == "pixel-sgd":
        if baseline_triggers is None or len(baseline_triggers) == 0:
            raise MesaError("pixel-sgd defense needs the baseline's triggers: run `baseline` first")
        chosen = baseline_triggers[:cfg.restarts or len(baseline_triggers)]
        per_restart, histories = [], []
        for i, t in enumerate(chosen):
            sampler = fixed_sampler(t.to(device))
            copy_i, history, after = retrain(model, lambda _: sampler, modeling, held_out, trigger, target, cfg,
                                             on_progress, f"{stage} {i + 1}/{len(chosen)}", should_stop)
            if inspect is not None:
                after = {**after, "inspection": inspect(copy_i, i)}
            per_restart.append(after)
            histories.append(history)
            if should_stop():
                break
        asrs = [r["asr"] for r in per_restart if "asr" in r]  # none without a planted trigger
        after = {"clean_acc": sum(r["clean_acc"] for r in per_restart) / len(per_restart)}
        result.update(after={**after, "asr": sum(asrs) / len(asrs)} if asrs else after,
                      worst_asr=max(asrs) if asrs else None, restarts=per_restart, history=histories[0],
                      histories=histories)
        defended = None
    else:
        if name == "mesa":
            if beta not in generators:
                raise MesaError(f"no generator for beta={beta:g}: the search has {sorted(generators)}; run `search` first")
            sampler = generator_sampler(generators[beta].to(device), cfg.seed, noise)
            sampler_for_epoch = lambda _: sampler  # noqa: E731
        elif name == "ensemble":
            if not generators:
                raise MesaError("ensemble defense needs the search's generators: run `search` first")
            samplers = [generator_sampler(generators[b].to(device), cfg.seed + i, noise)
                        for i, b in enumerate(sorted(generators, reverse=True))]
            sampler_for_epoch = lambda epoch: samplers[epoch % len(samplers)]  # noqa: E731
        elif name == "original":
            if trigger is None:
                raise MesaError("the run has no planted trigger: `original` needs one (import with --trigger)")
            sampler = fixed_sampler(trigger.to(device))
            sampler_for_epoch = lambda _: sampler  # noqa: E731
        else:
            sampler_for_epoch = lambda _: None  # noqa: E731
        defended, history, after = retrain(model, sampler_for_epoch, modeling, held_out, trigger, target, cfg,
                                           on_progress, stage, should_stop)
        result.update(after=after, worst_asr=after.get("asr"), history=history)
        if inspect is not None:
            result["inspection"] = inspect(defended, None)
    result["seconds"] = round(time.time() - start, 1)
    return result, defended
