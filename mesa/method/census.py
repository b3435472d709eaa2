"""The census of a backdoor: the ASR of EVERY trigger of a family on a model, not just the planted one.

The paper's claim is that a backdoor answers to a distribution of triggers; a defense that closes
the planted trigger may leave many others open. One batched pass stamps each trigger at random
places on the same held-out images and counts, per trigger, the share of images sent to each
class, so the same census also says how many triggers open each class (evidence for detection).
"""
import random
from dataclasses import asdict, dataclass

import torch

from mesa.device import autocast
from mesa.errors import MesaError
from mesa.method.intervals import noise_max, rate_ci
from mesa.method.triggers import binary_trigger, color_trigger, random_locations, stamp

FAMILIES = ("binary", "color")
OPEN = 0.5  # a trigger "opens" the backdoor when at least half the images go to the target
COLOR_DEFAULT = 4096
ENUMERABLE = 3  # every k x k binary pattern is enumerated up to this k (512 for 3x3)
MAX_SAMPLES = 65536  # the most triggers a census takes (or a MESA search samples per beta): 99,999,999 ran out of memory


@dataclass
class CensusConfig:
    family: str = "binary"
    trigger_size: int | None = None  # None: the run's trigger size, else 3
    samples: int | None = None  # binary: all patterns when k <= 3, else required; colour: 4096
    images: int = 256  # held-out images (outside the target class) each trigger is stamped on
    seed: int = 0
    location: tuple[int, int] | None = None  # None: a random place per image (the paper's rule)
    exhaustive: bool = False  # every trigger on every image; else the adaptive census (mesa/method/adaptive_census.py)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise MesaError(f"unknown census family {self.family!r}: use {' or '.join(FAMILIES)}")
        if self.images < 1 or (self.samples is not None and self.samples < 1):
            raise MesaError("census images and samples must be >= 1")
        if self.samples is not None and self.samples > MAX_SAMPLES:
            raise MesaError(f"a census takes at most {MAX_SAMPLES} triggers, not {self.samples}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Census:
    family: str
    names: list[str]  # trigger specs (binary:N[:K], color:SEED[:K]): parse_trigger rebuilds each one
    triggers: torch.Tensor  # N x 3 x k x k
    rates: torch.Tensor  # N x C: share of the images not of class c that the trigger sends to c
    target: int | None
    planted_asr: float | None = None
    counts: torch.Tensor | None = None  # N: the images each trigger was measured on (the adaptive census stops early)
    fresh_asr: float | None = None  # the highest trigger re-measured on fresh held-out images: its ASR unbiased by the max
    fresh_count: int = 0

    @property
    def asr(self) -> torch.Tensor:
        if self.target is None:
            raise MesaError("this census has no target class: pass one")
        return self.rates[:, self.target]


def spec(kind: str, number: int, k: int) -> str:
    """A family member's name: binary:N or color:SEED, with :K unless K is 3 (parse_trigger reads it)."""
    return f"{kind}:{number}" if k == 3 else f"{kind}:{number}:{k}"


def family_triggers(family: str, k: int = 3, samples: int | None = None, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """The family's triggers (N x 3 x k x k) and their specs: every binary pattern (or a seeded
    sample of `samples` for large k), or `samples` seeded random-colour triggers."""
    if family == "binary":
        total = 2 ** (k * k)
        if samples is None and k > ENUMERABLE:
            raise MesaError(f"binary {k}x{k} has {total} patterns, too many to enumerate: pass --samples N")
        numbers = range(total) if samples is None or samples >= total else sorted(random.Random(seed).sample(range(total), samples))
        return torch.stack([binary_trigger(n, k) for n in numbers]), [spec("binary", n, k) for n in numbers]
    if family == "color":
        start = seed * 1_000_000
        seeds = range(start, start + (samples or COLOR_DEFAULT))
        return torch.stack([color_trigger(s, k) for s in seeds]), [spec("color", s, k) for s in seeds]
    raise MesaError(f"unknown census family {family!r}: use {' or '.join(FAMILIES)}")


def fast_autocast(device: torch.device):
    """bf16 where the hardware runs it natively: about 2x faster inference on the census's 131K
    stamped images; elsewhere full precision."""
    return autocast(device, "auto")


def inference_copy(model):
    """An eval-mode copy with each BatchNorm folded into its convolution (1.3x faster inference on
    CPU, same function); the model itself when it cannot be traced (e.g. TorchScript)."""
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(model.eval())
    except Exception:  # noqa: BLE001 - any untraceable model is simply used as it is
        return model.eval()


def census_images(images: torch.Tensor, labels: torch.Tensor, target: int | None, count: int, skip: int = 0):
    """The first `count` images outside the target class (all classes when the target is unknown),
    after the first `skip` of them (fresh images: none when there are no more)."""
    keep = labels != target if target is not None else torch.ones_like(labels, dtype=torch.bool)
    x, y = images[keep][skip:count], labels[keep][skip:count]
    if len(x) == 0 and not skip:
        raise MesaError("no images outside the target class to take a census on")
    return x, y


def stamp_places(triggers: int, images: int, image_size: int, k: int, seed: int, device, chunk: int = 1024):
    """Triggers x images x 2: where each (trigger, image) pair is stamped, drawn from one seeded generator
    in trigger order, so the exhaustive and the adaptive census measure the same stamped images."""
    g = torch.Generator(device=device).manual_seed(seed)
    return torch.cat([random_locations(min(chunk, triggers - i) * images, image_size, k, device, g).short()
                      for i in range(0, triggers, chunk)]).view(triggers, images, 2)


@torch.inference_mode()
def count_hits(model, x: torch.Tensor, other: torch.Tensor, triggers: torch.Tensor, places, location,
               batch_images: int = 1024) -> torch.Tensor:
    """T x C: for each trigger, how many of the images x (M) NOT of class c (other: M x C) it sends to c,
    stamped at `places` (T x M x 2) or at the fixed `location`. Chunks of about `batch_images`."""
    m, num_classes = len(x), other.shape[1]
    per_chunk = max(1, batch_images // max(1, m))
    hits = []
    for i in range(0, len(triggers), per_chunk):
        t = triggers[i:i + per_chunk]
        at = places[i:i + per_chunk].reshape(-1, 2).long() if places is not None else location
        stamped = stamp(x.repeat(len(t), 1, 1, 1), t.repeat_interleave(m, 0), at)
        with fast_autocast(x.device):
            preds = model(stamped).argmax(1).view(len(t), m)
        hits.append(torch.einsum("tmc,mc->tc", torch.nn.functional.one_hot(preds, num_classes).float(), other))
    return torch.cat(hits) if hits else torch.zeros(0, num_classes, device=x.device)


def other_classes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """M x C: 1 where image m is not of class c (a trigger's rate for c counts only those)."""
    return (labels[:, None] != torch.arange(num_classes, device=labels.device)).float()


def prepared(model, images: torch.Tensor, labels, triggers, num_classes: int, seed: int, location):
    """The fused model, float images, the M x C mask, triggers on the device and their stamp places."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images
    places = None if location is not None else stamp_places(len(triggers), len(x), min(x.shape[-2:]),
                                                            triggers.shape[-1], seed, x.device)
    return inference_copy(model), x, other_classes(labels, num_classes), triggers.to(x.device), places


def class_rates(model, images: torch.Tensor, labels: torch.Tensor, triggers: torch.Tensor, num_classes: int,
                seed: int = 0, location=None, batch_images: int = 1024) -> torch.Tensor:
    """N x C: for each trigger, the share of images NOT of class c classified as c once stamped, each
    (trigger, image) pair at its own seeded random place (or the fixed `location`): reproducible."""
    model, x, other, triggers, places = prepared(model, images, labels, triggers, num_classes, seed, location)
    return (count_hits(model, x, other, triggers, places, location, batch_images) / other.sum(0).clamp(min=1)).cpu()


def take_census(model, images: torch.Tensor, labels: torch.Tensor, num_classes: int, target: int | None,
                cfg: CensusConfig, planted: torch.Tensor | None = None, k: int | None = None) -> Census:
    """The census of a model on held-out images; `planted` (the attacker's trigger) is measured on
    the same images, so its ASR and rank compare with every other trigger's. Adaptive unless the
    config says exhaustive or no target is known (then every class counts, on every image)."""
    from mesa.method.adaptive_census import adaptive_rates

    k = cfg.trigger_size or k or (planted.shape[-1] if planted is not None else 3)
    triggers, names = family_triggers(cfg.family, k, cfg.samples, cfg.seed)
    x, y = census_images(images, labels, target, cfg.images)
    if cfg.exhaustive or target is None:
        rates = class_rates(model, x, y, triggers, num_classes, cfg.seed, cfg.location)
        counts = torch.full((len(triggers),), len(x))
    else:
        rates, counts = adaptive_rates(model, x, y, triggers, num_classes, target, cfg.seed, cfg.location)
    census = Census(cfg.family, names, triggers, rates, target, counts=counts)
    if target is None:
        return census
    if planted is not None:
        census.planted_asr = class_rates(model, x, y, planted[None], num_classes, cfg.seed, cfg.location)[0, target].item()
    fx, fy = census_images(images, labels, target, 2 * cfg.images, skip=len(x))
    if len(fx):  # the highest trigger again, on images the census never saw
        census.fresh_asr = class_rates(model, fx, fy, triggers[int(census.asr.argmax())][None], num_classes,
                                       cfg.seed + 1, cfg.location)[0, target].item()
        census.fresh_count = len(fx)
    return census


def summarize(census: Census, betas=(0.5, 0.8, 0.9)) -> dict:
    """Counts of open triggers (ASR >= 0.5 and >= each beta), the worst (the highest of the triggers
    measured on every image), the mean, where the planted trigger ranks (1 = the highest ASR of the
    family); each ASR with its 95% interval, and the highest that noise alone would give."""
    per_class_open = (census.rates >= OPEN).sum(0).tolist()
    summary = {"family": census.family, "triggers": len(census.names), "target": census.target,
               "open_per_class": per_class_open}
    if census.target is None:
        return summary
    asr = census.asr
    counts = census.counts if census.counts is not None else torch.zeros(len(asr), dtype=torch.long)
    full = int(counts.max()) if len(counts) else 0
    worst = int(asr.masked_fill(counts < full, -1).argmax())
    planted = census.planted_asr
    summary.update(open=int((asr >= OPEN).sum()), open_at={f"{b:g}": int((asr >= b).sum()) for b in betas},
                   worst_asr=asr[worst].item(), worst_trigger=census.names[worst], mean_asr=asr.mean().item(),
                   original_asr=planted, original_rank=None if planted is None else 1 + int((asr > planted).sum()),
                   images=full, measured_images=int(counts.sum()), worst_asr_ci=rate_ci(asr[worst].item(), full),
                   original_asr_ci=rate_ci(planted, full),
                   noise_max=noise_max(asr.mean().item(), full, len(asr)) if full else None,
                   worst_asr_fresh=census.fresh_asr, worst_asr_fresh_ci=rate_ci(census.fresh_asr, census.fresh_count))
    return summary


def closure(before: torch.Tensor, after: torch.Tensor, floor: torch.Tensor | None = None) -> float | None:
    """Share of the triggers that opened the backdoor before (and do not open the clean model, the
    floor) that no longer open it after the defense; None when nothing was open."""
    opened = before >= OPEN
    if floor is not None:
        opened &= floor < OPEN
    if not opened.any():
        return None
    return (after[opened] < OPEN).float().mean().item()
