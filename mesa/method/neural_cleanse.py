"""Neural Cleanse (Wang et al., IEEE S&P 2019): per class, reverse the smallest full-image trigger
(mask m, pattern p) that sends every image to that class; a backdoor's class needs a far smaller
mask than the others, which the MAD anomaly index over the masks' L1 norms flags.

    x' = (1 - m) * x + m * p,   m = tanh(a)/2 + 1/2 (1 x H x W),  p = tanh(b)/2 + 1/2 (3 x H x W)
    loss = CE(f(x'), class) + cost * |m|_1

As the reference code (bolunwang/backdoor, visualizer.py): Adam (betas 0.5, 0.9) on a and b from a
uniform random start, the cost starts at 0 and is set to `init_cost` once the reversed trigger has
fired on >= 99% of the images for `patience` steps, then multiplied up (x `cost_multiplier`) after
`patience` steps above the threshold and divided down (by `cost_multiplier`**1.5) after `patience`
below it; the smallest mask that fired >= 99% is kept; a class stops early once the cost has moved
both ways and its best norm has not shrunk by 1% for `early_stop_patience` steps.

Departures, and why: all classes are reversed at once, in one batch of K x B stamped images (the
reference loops over classes; the maths per class is the same, Adam being per element); a "step" is
2 mini-batches of 16 images (the reference: 31 of 32), at most 100 steps (the reference: 1,000): ten
classes in under a minute on a 2-core CPU, and smaller batches give more Adam steps (on the embedded
data: anomaly index 2.7 for the attacked class vs 2.1-2.2 with 4 batches of 32), so the 99% is judged
on 32 images. Pixels are in [0, 1], not [0, 255]; the model stays in eval mode and frozen.
"""
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from mesa.errors import MesaError
from mesa.method.anomaly import anomaly_indices, flagged
from mesa.method.intervals import rate_ci
from mesa.method.metrics import predict
from mesa.method.search import freeze, unfreeze
from mesa.progress import Progress, ProgressFn, ignore

ASR_IMAGES = 512  # held-out images per class each reversed trigger is measured on


@dataclass
class NeuralCleanseConfig:
    steps: int = 100  # the reference: up to 1,000
    batches_per_step: int = 2  # the reference: 31 (1,000 images)
    batch_size: int = 16  # images per class per mini-batch (the reference: 32)
    lr: float = 0.1
    init_cost: float = 1e-3
    cost_multiplier: float = 2.0  # up by this, down by its 1.5th power (the reference's GTSRB example)
    patience: int = 5
    attack_threshold: float = 0.99
    early_stop: bool = True
    early_stop_threshold: float = 0.99
    early_stop_patience: int = 10  # the reference: 2 x patience (visualizer) or 5 x (its GTSRB example)
    seed: int = 0

    def __post_init__(self):
        if min(self.steps, self.batches_per_step, self.batch_size, self.patience, self.early_stop_patience) < 1:
            raise MesaError("steps, batches per step, batch size and patiences must be >= 1")
        if not (self.lr > 0 and self.init_cost > 0 and self.cost_multiplier > 1):
            raise MesaError("lr and init cost must be > 0 and the cost multiplier > 1")
        if not (0 < self.attack_threshold <= 1 and 0 < self.early_stop_threshold <= 1):
            raise MesaError("the attack and early-stop thresholds must be within (0, 1]")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CostSchedule:
    """One class's adaptive L1 cost and best-mask bookkeeping, updated once per step."""
    init_cost: float
    up: float
    down: float
    patience: int
    threshold: float
    stop_threshold: float
    stop_patience: int
    cost: float = 0.0
    best: float = math.inf  # the smallest mask norm that fired >= threshold
    stop_best: float = math.inf
    set_count: int = 0
    up_count: int = 0
    down_count: int = 0
    went_up: bool = False
    went_down: bool = False
    stale: int = 0

    @classmethod
    def from_config(cls, cfg: NeuralCleanseConfig) -> "CostSchedule":
        return cls(cfg.init_cost, cfg.cost_multiplier, cfg.cost_multiplier ** 1.5, cfg.patience,
                   cfg.attack_threshold, cfg.early_stop_threshold, cfg.early_stop_patience)

    def update(self, attack: float, norm: float) -> tuple[bool, bool]:
        """(this step's mask is the new best, stop now), in the reference's order."""
        fired = attack >= self.threshold
        improved = fired and norm < self.best
        self.best = norm if improved else self.best
        if self.best < math.inf:
            self.stale = self.stale + 1 if self.best >= self.stop_threshold * self.stop_best else 0
        self.stop_best = min(self.stop_best, self.best)
        if self.went_up and self.went_down and self.stale >= self.stop_patience:
            return improved, True
        self.set_count = self.set_count + 1 if self.cost == 0 and fired else 0
        if self.set_count >= self.patience:
            self.cost, self.up_count, self.down_count, self.went_up, self.went_down = self.init_cost, 0, 0, False, False
        self.up_count, self.down_count = (self.up_count + 1, 0) if fired else (0, self.down_count + 1)
        if self.up_count >= self.patience:
            self.up_count, self.cost, self.went_up = 0, self.cost * self.up, True
        elif self.down_count >= self.patience:
            self.down_count, self.cost, self.went_down = 0, self.cost / self.down, True
        return improved, False


def apply_trigger(images: torch.Tensor, mask: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """(1 - m) * x + m * p on float images in [0, 1]: mask 1 x H x W (or N x 1 x H x W), pattern
    3 x H x W (or N x 3 x H x W); the defense's retraining stamps a reversed trigger with this."""
    return images + mask * (pattern - images)


def _squash(t: torch.Tensor) -> torch.Tensor:
    return torch.tanh(t) / 2 + 0.5


def _unsquash(t: torch.Tensor) -> torch.Tensor:
    return torch.atanh((t - 0.5) * (2 - 1e-6))


def reverse_triggers(model, images: torch.Tensor, classes: list[int], cfg: NeuralCleanseConfig,
                     on_progress: ProgressFn = ignore, should_stop=lambda: False) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """The best (masks K x 1 x H x W, patterns K x 3 x H x W) for each class, on the CPU, and per class
    the steps run and the final cost. `images` are the defender's uint8 images (all classes, as the
    reference optimises on its whole test set)."""
    device, (n, _, h, w), k = images.device, images.shape, len(classes)
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    mask_t = _unsquash(torch.rand(k, 1, h, w, device=device, generator=g)).requires_grad_(True)
    pattern_t = _unsquash(torch.rand(k, 3, h, w, device=device, generator=g)).requires_grad_(True)
    opt = torch.optim.Adam([mask_t, pattern_t], lr=cfg.lr, betas=(0.5, 0.9))
    best_mask, best_pattern = _squash(mask_t.detach()), _squash(pattern_t.detach())
    schedules = [CostSchedule.from_config(cfg) for _ in classes]
    active = list(range(k))
    steps_run = [0] * k
    goal = torch.tensor(classes, device=device)
    freeze(model)
    try:
        for step in range(1, cfg.steps + 1):
            rows = torch.tensor(active, device=device)
            cost = torch.tensor([schedules[i].cost for i in active], device=device)
            sums = torch.zeros(2, len(active), device=device)  # attack rate, mask norm
            for _ in range(cfg.batches_per_step):
                x = images[torch.randint(0, n, (cfg.batch_size,), device=device, generator=g)].float().div_(255)
                mask, pattern = _squash(mask_t[rows]), _squash(pattern_t[rows])
                stamped = apply_trigger(x.unsqueeze(0), mask.unsqueeze(1), pattern.unsqueeze(1))
                logits = model(stamped.flatten(0, 1)).view(len(active), cfg.batch_size, -1)
                target = goal[rows, None].expand(-1, cfg.batch_size)
                ce = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view_as(target).mean(1)
                norm = mask.flatten(1).sum(1)
                opt.zero_grad(set_to_none=True)
                (ce + cost * norm).sum().backward()
                opt.step()
                sums += torch.stack([(logits.argmax(2) == target).float().mean(1), norm.detach()])
            attack, norms = (sums / cfg.batches_per_step).tolist()  # the one sync per step
            still = []
            for j, i in enumerate(active):
                improved, stop = schedules[i].update(attack[j], norms[j])
                if improved:  # this step's parameters: the reference keeps the mask seen after the step
                    best_mask[i], best_pattern[i] = _squash(mask_t[i].detach()), _squash(pattern_t[i].detach())
                steps_run[i] = step
                if not (stop and cfg.early_stop):
                    still.append(i)
            active = still
            on_progress(Progress("neural cleanse", step, cfg.steps, 0,
                                 {"classes_left": len(active), "mean_attack": sum(attack) / len(attack)}))
            if not active or should_stop():
                break
    finally:
        unfreeze(model)
    for i, schedule in enumerate(schedules):  # never fired: the last mask, as the reference
        if schedule.best == math.inf:
            best_mask[i], best_pattern[i] = _squash(mask_t[i].detach()), _squash(pattern_t[i].detach())
    info = [{"steps": steps_run[i], "cost": schedules[i].cost, "fired": schedules[i].best < math.inf} for i in range(k)]
    return best_mask.cpu(), best_pattern.cpu(), info


@dataclass
class ClassTrigger:
    label: int
    l1_norm: float
    anomaly_index: float
    flagged: bool
    steps: int
    cost: float
    fired: bool  # reached the attack threshold at least once (else its last mask is kept)
    asr: float | None = None  # of its reversed trigger, on held-out images of other classes
    asr_images: int = 0
    asr_ci: list[float] | None = None


@dataclass
class NeuralCleanseResult:
    per_class: list[ClassTrigger]
    median: float
    mad: float
    suspect: int | None  # the flagged class with the largest anomaly index
    triggers: torch.Tensor = field(repr=False)  # K x 4 x H x W: each class's mask (channel 0) and pattern

    @property
    def smallest(self) -> int:
        """The class with the smallest reversed mask: NC's ranking, flagged or not."""
        return min(self.per_class, key=lambda c: c.l1_norm).label

    def summary(self) -> dict:
        return {"per_class": [asdict(c) for c in self.per_class], "median": self.median, "mad": self.mad,
                "suspect": self.suspect, "smallest": self.smallest, "backdoor_detected": self.suspect is not None}

    def trigger(self, label: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mask, pattern) reversed for `label`."""
        return self.triggers[label, :1], self.triggers[label, 1:]


def judged(masks: torch.Tensor, patterns: torch.Tensor, info: list[dict]) -> NeuralCleanseResult:
    """The reversed triggers with each class's L1 norm and anomaly index, and the suspect."""
    norms = masks.flatten(1).sum(1).tolist()
    indices, median, mad = anomaly_indices(norms)
    hits = flagged(norms)
    per_class = [ClassTrigger(c, norms[c], indices[c], c in hits, **info[c]) for c in range(len(norms))]
    return NeuralCleanseResult(per_class, median, mad, hits[0] if hits else None, torch.cat([masks, patterns], 1))


@torch.no_grad()
def per_class_asr(model, images, labels, triggers, target=None, location=None, max_images: int = ASR_IMAGES) -> torch.Tensor:
    """Each class's reversed trigger (K x 4 x H x W), its share of held-out images of other classes it
    sends to that class (`target` and `location` unused: a full-image trigger toward its own class)."""
    rates = []
    for label, t in enumerate(triggers):
        x = images[labels != label][:max_images]
        stamped = apply_trigger(x.float() / 255, t[:1].to(x.device), t[1:].to(x.device))
        rates.append((predict(model, stamped) == label).float().mean() if len(x) else torch.tensor(math.nan))
    return torch.stack(rates).cpu()


def with_asr(result: NeuralCleanseResult, asr: torch.Tensor, labels: torch.Tensor) -> NeuralCleanseResult:
    """The result with each class's measured ASR and its interval (`labels`: the images it was measured on)."""
    for c, a in zip(result.per_class, asr.tolist()):
        c.asr, c.asr_images = a, min(ASR_IMAGES, int((labels != c.label).sum()))
        c.asr_ci = rate_ci(a, c.asr_images)
    return result


def neural_cleanse(model, images, labels, num_classes: int, cfg: NeuralCleanseConfig, eval_images=None,
                   eval_labels=None, on_progress: ProgressFn = ignore, should_stop=lambda: False) -> NeuralCleanseResult:
    """Reverse a trigger toward every class on the defender's uint8 `images`, measure each on the
    held-out ones, and flag the classes whose mask is anomalously small."""
    if num_classes < 2 or len(images) == 0:
        raise MesaError("Neural Cleanse needs images and at least two classes")
    eval_images = images if eval_images is None else eval_images
    eval_labels = labels if eval_labels is None else eval_labels
    result = judged(*reverse_triggers(model, images, list(range(num_classes)), cfg, on_progress, should_stop))
    return with_asr(result, per_class_asr(model, eval_images, eval_labels, result.triggers), eval_labels)
