"""MESA's search: one generator G_beta per ASR threshold beta, each trained to keep the
backdoored model's target probability above beta while maximising the entropy of its triggers.

Per step: triggers = G(z) + noise, stamped at random places on a batch of the defender's images;
    loss_G = -mean(min(p_target, beta)) - alpha * MINE(z; G(z))
then T is trained to tighten the MINE bound. The classifier stays frozen and in eval mode
(BatchNorm statistics must not move, or the backdoor itself is weakened: a fake defense).
"""
import time
from dataclasses import asdict, dataclass, field

import torch

from mesa.device import PRECISIONS, autocast
from mesa.errors import MesaError
from mesa.method.generator import StatisticsNetwork, TriggerGenerator, sample_noise
from mesa.method.mine import MineTrainer, mine_lower_bound
from mesa.method.registry import Inversion, register_inversion
from mesa.progress import Progress, ProgressFn, ignore
from mesa.method.census import class_rates
from mesa.method.triggers import parse_location, stamp


@dataclass
class SearchConfig:
    betas: list[float] = field(default_factory=lambda: [0.5, 0.8, 0.9])
    alpha: float = 0.1
    epochs: int = 10  # passes over the modeling split (620 steps on CIFAR-10's 8,000 images)
    batch_size: int = 128
    lr: float = 2e-4
    noise_std: float = 0.1
    noise_dim: int = 64
    noise: str = "uniform"  # or "gaussian"
    hidden: int | None = None  # 512, or 2048 for 100+ classes (the paper's choice)
    mine_rate: float = 0.001
    trigger_size: int = 3
    seed: int = 0
    log_every: int = 5
    snapshot_size: int = 64
    location: str | None = None  # random or fixed:ROW,COL; None: random here, the run's own in stages
    precision: str = "auto"  # the classifier's forward in bf16 where native (mesa.device); G and T stay fp32

    def __post_init__(self):
        if not self.betas or not all(0 < b < 1 for b in self.betas):
            raise MesaError(f"betas must be within (0, 1), got {self.betas}")
        if self.alpha < 0 or self.epochs < 1 or self.batch_size < 1:
            raise MesaError("alpha must be >= 0, epochs >= 1 and batch size >= 1")
        if self.noise not in ("uniform", "gaussian"):
            raise MesaError(f"unknown noise {self.noise!r}: use uniform or gaussian")
        if self.precision not in PRECISIONS:
            raise MesaError(f"unknown precision {self.precision!r}: use {', '.join(PRECISIONS)}")

    def hidden_for(self, num_classes: int) -> int:
        return self.hidden or (2048 if num_classes >= 100 else 512)

    def to_dict(self) -> dict:
        return asdict(self)


def freeze(model):
    """Eval mode and no weight gradients: the search differentiates w.r.t. the input only."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def unfreeze(model):
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def capped_target_probability(p_target: torch.Tensor, beta: float) -> torch.Tensor:
    """mean(min(p_target, beta)): the paper's hinge max(0, beta - p) up to a constant. Triggers
    already above beta get no gradient, so the entropy term is free to spread them out."""
    return torch.clamp(p_target, max=beta).mean()


def train_generator(model, images: torch.Tensor, labels: torch.Tensor, target: int, beta: float,
                    cfg: SearchConfig, num_classes: int, on_progress: ProgressFn = ignore,
                    should_stop=lambda: False) -> tuple[TriggerGenerator, list[dict], list[torch.Tensor]]:
    """Train G_beta on uint8 `images` (on the model's device). Returns (G, logged curve, per-epoch snapshots)."""
    device = images.device
    torch.manual_seed(cfg.seed)
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    hidden = cfg.hidden_for(num_classes)
    gen = TriggerGenerator(cfg.trigger_size, cfg.noise_dim, hidden).to(device)
    stats = StatisticsNetwork(cfg.trigger_size, cfg.noise_dim, hidden).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    mine = MineTrainer(stats, torch.optim.Adam(stats.parameters(), lr=cfg.lr, betas=(0.5, 0.999)), cfg.mine_rate)
    fixed_z = sample_noise(cfg.snapshot_size, cfg.noise_dim, device, g, cfg.noise)
    location = parse_location(cfg.location)
    n = len(labels)
    per_epoch = max(1, n // cfg.batch_size)
    total, step = per_epoch * cfg.epochs, 0
    stage = f"search beta={beta:g}"
    curve, snapshots = [], []
    sums = torch.zeros(4, device=device)  # hinge, mi, p_target, fired: summed between logs
    not_target = (labels != target)
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, device=device, generator=g)
        for i in range(per_epoch):
            idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            x = images[idx].float().div_(255)
            b = len(idx)
            z = sample_noise(b, cfg.noise_dim, device, g, cfg.noise)
            z_marginal = sample_noise(b, cfg.noise_dim, device, g, cfg.noise)
            gen.train()
            triggers = gen(z)
            noisy = triggers + cfg.noise_std * torch.randn(triggers.shape, device=device, generator=g)
            with autocast(device, cfg.precision):
                logits = model(stamp(x, noisy, location, generator=g)).float()
            p_target = logits.softmax(1)[:, target]
            hinge = capped_target_probability(p_target, beta)
            mi = mine_lower_bound(stats, z, z_marginal, triggers)
            loss = -hinge - cfg.alpha * mi
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            mi_after = mine.step(z, z_marginal, triggers.detach())
            keep = not_target[idx]
            fired = ((logits.argmax(1) == target) & keep).sum() / keep.sum().clamp(min=1)
            sums += torch.stack([hinge.detach(), mi_after, p_target.detach().mean(), fired.detach()])
            step += 1
            if step % cfg.log_every == 0 or step == total:
                count = step - (curve[-1]["step"] if curve else 0)
                hinge_v, mi_v, p_v, asr_v = (sums / count).tolist()
                sums.zero_()
                point = {"step": step, "epoch": epoch, "hinge": hinge_v, "mi": mi_v, "p_target": p_v, "asr": asr_v}
                curve.append(point)
                on_progress(Progress(stage, step, total, epoch, {k: v for k, v in point.items() if k not in ("step", "epoch")},
                                     images=sample_triggers(gen, fixed_z)))  # the app's live grid follows each step
            if should_stop():
                break
        snapshots.append(sample_triggers(gen, fixed_z))
        on_progress(Progress(stage, step, total, epoch + 1, dict(curve[-1]) if curve else {}, images=snapshots[-1]))
        if should_stop():
            break
    gen.eval()
    return gen, curve, snapshots


@torch.no_grad()
def sample_triggers(gen: TriggerGenerator, z: torch.Tensor) -> torch.Tensor:
    """Triggers G(z) in eval mode (BatchNorm running statistics), on the CPU."""
    was_training = gen.training
    gen.eval()
    out = gen(z).cpu()
    gen.train(was_training)
    return out


def generate(gen: TriggerGenerator, n: int, seed: int = 0, noise: str = "uniform") -> torch.Tensor:
    device = next(gen.parameters()).device
    z = sample_noise(n, gen.noise_dim, device, torch.Generator(device=device).manual_seed(seed), noise)
    return sample_triggers(gen, z)


def per_trigger_asr(model, images: torch.Tensor, labels: torch.Tensor, triggers: torch.Tensor, target: int,
                    max_images: int = 256, seed: int = 0, location=None) -> torch.Tensor:
    """ASR of each trigger (M x 3 x k x k) on the same non-target images, each at a random place
    (or at `location`: random, fixed:ROW,COL or a (row, col)); the census's batched pass."""
    location = parse_location(location) if isinstance(location, str) or location is None else location
    keep = labels != target
    x, y = images[keep][:max_images], labels[keep][:max_images]
    if len(x) == 0:
        raise MesaError("no images outside the target class to measure ASR on")
    num_classes = max(int(labels.max()), target) + 1
    return class_rates(model, x, y, triggers, num_classes, seed, location)[:, target]


@dataclass
class SearchResult:
    beta: float
    generator: TriggerGenerator
    curve: list[dict]
    snapshots: torch.Tensor  # epochs x snapshot_size x 3 x k x k
    samples: torch.Tensor  # N x 3 x k x k
    samples_asr: torch.Tensor  # N
    seconds: float
    coverage: dict = field(default_factory=dict)  # the samples' coverage of the census (mesa/lab/pipeline/search_coverage.py)

    def summary(self) -> dict:
        return {"beta": self.beta, "mean_asr": self.samples_asr.mean().item(),
                "above_half": (self.samples_asr > 0.5).float().mean().item(),
                "final_mi": self.curve[-1]["mi"] if self.curve else None, "seconds": round(self.seconds, 1),
                "steps": self.curve[-1]["step"] if self.curve else 0, **self.coverage}


def search(model, images, labels, target: int, cfg: SearchConfig, num_classes: int,
           eval_images=None, eval_labels=None, num_samples: int = 256,
           on_progress: ProgressFn = ignore, should_stop=lambda: False) -> list[SearchResult]:
    """Train every G_beta of the staircase; sample `num_samples` triggers from each and measure their ASR."""
    if not 0 <= target < num_classes:
        raise MesaError(f"target class {target} out of range 0..{num_classes - 1}")
    freeze(model)
    eval_images = images if eval_images is None else eval_images
    eval_labels = labels if eval_labels is None else eval_labels
    results = []
    try:
        for beta in cfg.betas:
            start = time.time()
            gen, curve, snaps = train_generator(model, images, labels, target, beta, cfg, num_classes,
                                                on_progress, should_stop)
            samples = generate(gen, num_samples, seed=cfg.seed + 1, noise=cfg.noise)
            asr = per_trigger_asr(model, eval_images, eval_labels, samples, target, location=cfg.location)
            results.append(SearchResult(beta, gen.cpu(), curve, torch.stack(snaps), samples, asr, time.time() - start))
            if should_stop():
                break
    finally:
        unfreeze(model)
    return results


register_inversion(Inversion(
    "mesa", "search", SearchConfig, search, gives="generators", output="MESA's generators",
    sweep_key=lambda s: {"betas": s.betas, "epochs": s.search_epochs, "samples": s.samples, "seed": s.seed},
    sweep_config=lambda k: (SearchConfig(betas=k["betas"], epochs=k["epochs"], seed=k["seed"]),
                            {"num_samples": k["samples"]}),
    help="MESA: one generator per beta, the distribution of triggers"))
