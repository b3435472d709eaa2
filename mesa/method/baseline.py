"""The pixel-space SGD baseline: reverse-engineer ONE trigger per restart by gradient descent on
its pixels (the paper's "single reversed trigger"). All restarts run together in one batch."""
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from mesa.errors import MesaError
from mesa.method.registry import Inversion, register_inversion
from mesa.progress import Progress, ProgressFn, ignore
from mesa.method.search import freeze, unfreeze
from mesa.method.triggers import parse_location, stamp


@dataclass
class BaselineConfig:
    restarts: int = 10
    steps: int = 300
    images_per_restart: int = 32  # each step, every restart sees its own batch of this many images
    lr: float = 0.1
    momentum: float = 0.9
    trigger_size: int = 3
    seed: int = 0
    location: str | None = None  # random or fixed:ROW,COL; None: random here, the run's own in stages
    log_every: int = 10

    def __post_init__(self):
        if self.restarts < 1 or self.steps < 1 or self.images_per_restart < 1:
            raise MesaError("restarts, steps and images per restart must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


def pixel_sgd_triggers(model, images: torch.Tensor, labels: torch.Tensor, target: int, cfg: BaselineConfig,
                       on_progress: ProgressFn = ignore, should_stop=lambda: False) -> tuple[torch.Tensor, list[dict]]:
    """K triggers (K x 3 x k x k, on the CPU), each optimised from a uniform random start with SGD on
    cross-entropy toward the target, stamped at random places, clipped to [0, 1]."""
    device = images.device
    pool = images[labels != target]
    if len(pool) == 0:
        raise MesaError("no images outside the target class to reverse a trigger on")
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    k, r, b = cfg.trigger_size, cfg.restarts, cfg.images_per_restart
    triggers = torch.rand(r, 3, k, k, device=device, generator=g).requires_grad_(True)
    opt = torch.optim.SGD([triggers], lr=cfg.lr, momentum=cfg.momentum)
    goal = torch.full((r * b,), target, device=device)
    location = parse_location(cfg.location)
    curve = []
    freeze(model)
    try:
        for step in range(1, cfg.steps + 1):
            idx = torch.randint(0, len(pool), (r * b,), device=device, generator=g)
            x = pool[idx].float().div_(255)
            logits = model(stamp(x, triggers.repeat_interleave(b, 0), location, generator=g))
            # sum over restarts of each restart's mean loss: restarts do not share a step size
            loss = F.cross_entropy(logits, goal) * r
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                triggers.clamp_(0, 1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                asr = (logits.argmax(1) == target).float().mean().item()
                point = {"step": step, "loss": loss.item() / r, "asr": asr}
                curve.append(point)
                on_progress(Progress("baseline pixel-sgd", step, cfg.steps, 0, {"loss": point["loss"], "asr": asr}))
            if should_stop():
                break
    finally:
        unfreeze(model)
    return triggers.detach().cpu(), curve


def reversed_set(model, images, labels, target, cfg, on_progress: ProgressFn = ignore, should_stop=lambda: False):
    """The registered run: (the triggers, their optimisation curve, saved beside them)."""
    triggers, curve = pixel_sgd_triggers(model, images, labels, target, cfg, on_progress, should_stop)
    return triggers, {"curve": curve}


register_inversion(Inversion(
    "pixel-sgd", "baseline", BaselineConfig, reversed_set, gives="triggers", output="the baseline's triggers",
    sweep_key=lambda s: {"restarts": s.restarts, "steps": s.baseline_steps, "seed": s.seed},
    sweep_config=lambda k: (BaselineConfig(**k), {}), help="pixel-space SGD: one reversed trigger per restart"))
