"""One training loop for clean training, poisoned training (attack) and retraining (defense).

Data lives on the device as uint8 tensors; augmentation (random crop + flip) and poisoning are
batched tensor ops; the host only syncs to log. A `batch_transform` hook decides what happens
to each augmented batch: the attack stamps and relabels, the defense stamps and keeps labels.
"""
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from mesa.device import PRECISIONS, autocast
from mesa.errors import MesaError
from mesa.progress import Progress, ProgressFn, ignore


SCHEDULES = ("onecycle", "triangle", "constant")


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.2
    schedule: str = "onecycle"  # "onecycle" (from scratch), "triangle" (fastnet's) or "constant" (fine-tuning, as the paper)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    bias_lr_scale: float = 1.0  # learning-rate factor for BatchNorm biases (fastnet: 64)
    augment: bool = True
    crop_pad: int = 4  # random-crop translation, in pixels
    precision: str = "auto"  # bf16 autocast where the device runs it natively (mesa.device), or fp32 / bf16
    seed: int = 0
    log_every: int = 10

    def __post_init__(self):
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0 or not self.bias_lr_scale > 0:
            raise MesaError("epochs must be >= 0, batch size >= 1 and learning rates > 0")
        if self.schedule not in SCHEDULES:
            raise MesaError(f"unknown schedule {self.schedule!r}: use {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise MesaError(f"unknown precision {self.precision!r}: use {', '.join(PRECISIONS)}")

    def to_dict(self) -> dict:
        return asdict(self)


BatchTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (reflect padding) and horizontal flip, per image, in one gather."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), device=x.device, generator=generator)
    flip = torch.rand(n, device=x.device, generator=generator) < 0.5
    rows = offsets[:, :1] + torch.arange(h, device=x.device)
    cols = offsets[:, 1:] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _param_groups(model, cfg: TrainConfig) -> list[dict]:
    """BatchNorm biases apart when they learn faster; their decay per step stays the same."""
    norm_biases = {id(m.bias) for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   and m.bias is not None}
    trainable = [p for p in model.parameters() if p.requires_grad]
    if cfg.bias_lr_scale == 1.0:
        return [{"params": trainable}]
    fast = [p for p in trainable if id(p) in norm_biases]
    rest = [p for p in trainable if id(p) not in norm_biases]
    scale = cfg.bias_lr_scale
    return [{"params": rest}, {"params": fast, "lr": cfg.lr * scale, "weight_decay": cfg.weight_decay / scale}]


def _optimizer(model, cfg: TrainConfig, steps: int):
    opt = torch.optim.SGD(_param_groups(model, cfg), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)
    peak = [g["lr"] for g in opt.param_groups]
    if cfg.schedule == "onecycle" and steps > 0:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak, total_steps=steps, pct_start=0.25,
                                                    anneal_strategy="linear", div_factor=10, final_div_factor=100)
    elif cfg.schedule == "triangle" and steps > 0:  # from 0.2x up to the peak at 20% of the steps, then down to 0
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak, total_steps=steps, pct_start=0.2,
                                                    anneal_strategy="linear", div_factor=5, final_div_factor=1e6,
                                                    cycle_momentum=False)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


def train_classifier(model, images: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig,
                     batch_transform: BatchTransform | None = None,
                     evaluate: Callable[[object], dict] | None = None,
                     epoch_start: Callable[[int], None] | None = None,
                     on_progress: ProgressFn = ignore, stage: str = "train",
                     should_stop: Callable[[], bool] = lambda: False) -> list[dict]:
    """Train `model` in place on uint8 `images` (already on the model's device); returns per-epoch history.

    `evaluate(model)` gives the per-epoch metrics (e.g. clean accuracy and ASR on the test set);
    `epoch_start(epoch)` lets a caller change the batch transform between epochs (the ensemble
    defense cycles generators). Drops the last incomplete batch, as fast CIFAR trainers do.
    """
    n = len(labels)
    if n == 0:
        raise MesaError("no training images")
    device = images.device
    torch.manual_seed(cfg.seed)
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    g_cpu = torch.Generator().manual_seed(cfg.seed)
    per_epoch = max(1, n // cfg.batch_size)
    total = per_epoch * cfg.epochs
    opt, sched = _optimizer(model, cfg, total)
    history, step = [], 0
    for epoch in range(cfg.epochs):
        if epoch_start:
            epoch_start(epoch)
        model.train()
        perm = torch.randperm(n, generator=g_cpu).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        for i in range(per_epoch):
            idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            x, y = images[idx].float().div_(255), labels[idx]
            if cfg.augment:
                x = augment(x, g, cfg.crop_pad)
            if batch_transform:
                x, y = batch_transform(x, y)
            with autocast(device, cfg.precision):
                out = model(x)
            loss = F.cross_entropy(out.float(), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            loss_sum += loss.detach() * len(y)
            correct += (out.detach().argmax(1) == y).sum()
            seen += len(y)
            if step % cfg.log_every == 0 or i == per_epoch - 1:
                on_progress(Progress(stage, step, total, epoch, {"loss": (loss_sum / seen).item(),
                                                                  "train_acc": (correct / seen).item()}))
            if should_stop():
                break
        record = {"epoch": epoch + 1, "loss": (loss_sum / max(seen, 1)).item(), "train_acc": (correct / max(seen, 1)).item()}
        if evaluate:
            record.update(evaluate(model))
        history.append(record)
        on_progress(Progress(stage, step, total, epoch + 1, dict(record)))
        if should_stop():
            break
    model.eval()
    return history
