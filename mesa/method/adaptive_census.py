"""The adaptive census: every trigger screened on a few images, more spent only where it can change
an answer. After a defense nearly every pattern is plainly closed after 32 images, so measuring it on
256 is wasted work (and a census is taken per pixel-SGD restart).

The rule, and its stated error rate: the images are taken in looks of 32, 64, 128, ... up to all of
them. After each look a trigger stops when its one-sided Wilson bounds put it clearly on one side of
every threshold (0.5, where a trigger "opens" the backdoor, and each beta), at a confidence adjusted
for every trigger and every look (Bonferroni: alpha / (triggers x looks), alpha = 0.05). So, with
probability about 0.95, no trigger stopped early is on the wrong side of any threshold: the verdicts
it reports are those of its true ASR, as an exhaustive census on unlimited images would give. Triggers
still uncertain at the last look are measured on every image, exactly as the exhaustive census does
(the same stamped images: mesa.method.census.stamp_places). The `top` highest triggers at each look
are also kept to the end: the census's highest pattern is the highest of those measured on every image.
"""
import torch

from mesa.method.census import OPEN, count_hits, prepared
from mesa.method.intervals import z_value

ALPHA = 0.05  # the chance that any early stop is on the wrong side of a threshold
FIRST = 32  # images in the first look (16 cannot close even 0 hits at this confidence)
TOP = 8  # the highest triggers measured on every image (the top of the ranking)
THRESHOLDS = (OPEN, 0.8, 0.9)  # the verdicts a census reports: open, and open at the paper's betas


def looks(images: int, first: int = FIRST) -> list[int]:
    """How many images have been measured after each look: first, 2 x first, ... and all of them."""
    out, n = [], first
    while n < images:
        out.append(n)
        n *= 2
    return out + [images]


def wilson_bounds(hits: torch.Tensor, n: torch.Tensor, z: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Wilson's score bounds of hits/n, elementwise (see mesa.method.intervals.wilson)."""
    n = n.clamp(min=1).double()
    p, z2 = hits.double() / n, z * z
    centre, spread = p + z2 / (2 * n), z * torch.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return ((centre - spread) / (1 + z2 / n)).clamp(min=0), ((centre + spread) / (1 + z2 / n)).clamp(max=1)


def uncertain(hits: torch.Tensor, n: torch.Tensor, z: float, thresholds=THRESHOLDS) -> torch.Tensor:
    """Triggers whose bounds straddle a threshold: their verdict there could still go either way."""
    low, high = wilson_bounds(hits, n, z)
    return torch.stack([(low < b) & (high >= b) for b in thresholds]).any(0)


def adaptive_rates(model, images: torch.Tensor, labels: torch.Tensor, triggers: torch.Tensor, num_classes: int,
                   target: int, seed: int = 0, location=None, thresholds=THRESHOLDS, alpha: float = ALPHA,
                   first: int = FIRST, top: int = TOP) -> tuple[torch.Tensor, torch.Tensor]:
    """(N x C rates, N image counts): each trigger's class rates on the images it was measured on."""
    model, x, other, triggers, places = prepared(model, images, labels, triggers, num_classes, seed, location)
    n_trig, schedule = len(triggers), looks(len(x), first)
    z = z_value(1 - alpha / (n_trig * max(1, len(schedule) - 1)), sides=1)
    hits = torch.zeros(n_trig, num_classes, device=x.device)
    counts = torch.zeros(n_trig, dtype=torch.long, device=x.device)
    active = torch.arange(n_trig, device=x.device)
    seen = 0
    for n in schedule:
        span = places[active, seen:n] if places is not None else None
        hits[active] += count_hits(model, x[seen:n], other[seen:n], triggers[active], span, location)
        counts[active], seen = n, n
        keep = torch.zeros(n_trig, dtype=torch.bool, device=x.device)
        keep[active] = uncertain(hits[active, target], counts[active], z, thresholds)
        keep[active[(hits[active, target] / n).topk(min(top, len(active))).indices]] = True
        active = keep.nonzero().flatten()
        if len(active) == 0:
            break
    denominators = other.cumsum(0)[counts - 1]  # per trigger: its images not of each class
    return (hits / denominators.clamp(min=1)).cpu(), counts.cpu()
