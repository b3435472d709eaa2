"""Unlearning from the trigger distribution (BAERASER's second step, Liu et al., arXiv 2201.09538):
gradient ASCENT on the cross-entropy toward the target of images stamped with triggers sampled from
MESA's generators, while a clean-data loss keeps the model's accuracy.

Per step, on a batch (x, y) of the defender's images and stamped copies x' of a fraction of it:

    loss = -gate * mean_i min(CE(f(x'_i), target), cap) + clean_weight * CE(f(x), y)

Where the paper is vague, and what is chosen here (only its abstract and summaries could be read: the
ascent on recovered triggers, and that plain ascent must be held back or the model forgets its task):
- its bound on the ascent is not specified. Ascent on a cross-entropy is unbounded (it can push the
  target logit to minus infinity and wreck the features), so each stamped image stops pulling once its
  target probability is below exp(-cap) (1% by default; the same cap as MESA's min(p, beta)), and the
  whole ascent term is switched off (`gate` 0) while a running mean of the clean loss is above the
  clean loss measured before unlearning plus `clean_margin`; the clean term keeps descending.
- images of the target class are not ascended on (that would unlearn the class, not the trigger).
- clean and stamped images go through one forward pass in train mode, as the retraining defense's
  half-stamped batches do, so BatchNorm's statistics see both; no host sync inside the loop.
"""
import copy
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from mesa.device import PRECISIONS, autocast
from mesa.errors import MesaError
from mesa.method.poison import Sampler
from mesa.method.triggers import parse_location, stamp
from mesa.progress import Progress, ProgressFn, ignore
from mesa.train import augment


@dataclass
class UnlearnConfig:
    epochs: int = 5
    batch_size: int = 128
    ratio: float = 0.5  # stamped copies per batch, as a share of its images
    lr: float = 1e-3
    momentum: float = 0.9
    clean_weight: float = 1.0
    cap: float = 4.6  # -log(0.01): an image whose target probability is under 1% is unlearned
    clean_margin: float = 0.3  # nats above the starting clean loss at which the ascent pauses
    smoothing: float = 0.9  # of the running clean loss the gate reads
    augment: bool = True
    location: str | None = None  # random or fixed:ROW,COL
    precision: str = "auto"
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 2:
            raise MesaError("unlearning epochs must be >= 1 and the batch size >= 2")
        if not 0 < self.ratio <= 1:
            raise MesaError(f"stamped ratio {self.ratio} must be within (0, 1]")
        if not (self.lr > 0 and self.cap > 0 and self.clean_margin >= 0 and self.clean_weight >= 0):
            raise MesaError("lr and cap must be > 0, clean margin and clean weight >= 0")
        if not 0 <= self.smoothing < 1:
            raise MesaError("smoothing must be within [0, 1)")
        if self.precision not in PRECISIONS:
            raise MesaError(f"unknown precision {self.precision!r}: use {', '.join(PRECISIONS)}")
        parse_location(self.location)

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def clean_loss(model, images: torch.Tensor, labels: torch.Tensor, cfg: UnlearnConfig, g: torch.Generator) -> torch.Tensor:
    """The model's mean cross-entropy on the defender's images (augmented as in training), in eval
    mode: the level the ascent must not push the clean loss far above. A 0-d tensor, no sync."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=images.device)
    for i in range(0, len(labels), 1000):
        x = images[i:i + 1000].float().div_(255)
        x = augment(x, g) if cfg.augment else x
        with autocast(images.device, cfg.precision):
            total += F.cross_entropy(model(x).float(), labels[i:i + 1000], reduction="sum")
    model.train(was_training)
    return total / len(labels)


def unlearn(model, images: torch.Tensor, labels: torch.Tensor, sampler: Sampler, target: int, cfg: UnlearnConfig,
            evaluate: Callable[[object], dict] | None = None, on_progress: ProgressFn = ignore,
            should_stop=lambda: False) -> tuple[torch.nn.Module, list[dict]]:
    """An unlearned copy of `model` and its per-epoch history, from the defender's uint8 `images` (on
    the model's device) and `sampler` (n -> n x 3 x k x k triggers). `evaluate(model)` adds held-out
    metrics to each epoch's record."""
    n = len(labels)
    if n < cfg.batch_size:
        raise MesaError(f"unlearning needs at least {cfg.batch_size} images (one batch), got {n}")
    device = images.device
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    location = parse_location(cfg.location)
    with torch.no_grad():  # a TorchScript body copied with grad on would get non-leaf parameters
        unlearned = copy.deepcopy(model)
    for p in unlearned.parameters():
        p.requires_grad_(True)
    bound = clean_loss(unlearned, images, labels, cfg, g) + cfg.clean_margin
    running = bound - cfg.clean_margin
    opt = torch.optim.SGD(unlearned.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    b, stamped_n = cfg.batch_size, max(1, round(cfg.ratio * cfg.batch_size))
    per_epoch = n // b
    history = []
    for epoch in range(cfg.epochs):
        unlearned.train()
        perm = torch.randperm(n, device=device, generator=g)
        sums = torch.zeros(4, device=device)  # clean loss, capped ascent CE, gate, stamped sent to target
        for i in range(per_epoch):
            idx = perm[i * b:(i + 1) * b]
            x, y = images[idx].float().div_(255), labels[idx]
            x = augment(x, g) if cfg.augment else x
            marked = stamp(x[:stamped_n], sampler(stamped_n).to(device), location, generator=g)
            keep = (y[:stamped_n] != target).float()
            with autocast(device, cfg.precision):
                logits = unlearned(torch.cat([x, marked])).float()
            clean = F.cross_entropy(logits[:b], y)
            toward = torch.full_like(y[:stamped_n], target)
            ce = F.cross_entropy(logits[b:], toward, reduction="none").clamp(max=cfg.cap)
            ascent = (ce * keep).sum() / keep.sum().clamp(min=1)
            running = cfg.smoothing * running + (1 - cfg.smoothing) * clean.detach()
            gate = (running <= bound).float()
            loss = cfg.clean_weight * clean - gate * ascent
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            fired = ((logits[b:].argmax(1) == target).float() * keep).sum() / keep.sum().clamp(min=1)
            sums += torch.stack([clean.detach(), ascent.detach(), gate, fired.detach()])
            if should_stop():
                break
        values = (sums / max(1, i + 1)).tolist()
        record = {"epoch": epoch + 1, **dict(zip(("clean_loss", "ascent_ce", "ascent_share", "stamped_asr"), values))}
        if evaluate:
            record.update(evaluate(unlearned))
        history.append(record)
        on_progress(Progress("unlearn", (epoch + 1) * per_epoch, cfg.epochs * per_epoch, epoch + 1, dict(record)))
        if should_stop():
            break
    unlearned.eval()
    return unlearned, history
