"""Stamping triggers on a fraction of each training batch. The attack relabels the stamped
images to its target; the defense keeps their true labels so the model unlearns the trigger.
One transform serves both, so attack and defense poison batches the same way.

What is stamped is a patch from a Sampler (n -> n triggers, pasted at a place), or a Stamper: a
trigger that is not a patch (a full-image blend, say) and so stamps the images itself."""
import math
import random
from dataclasses import dataclass
from typing import Callable

import torch

from mesa.errors import MesaError
from mesa.method.triggers import stamp

Sampler = Callable[[int], torch.Tensor]  # n -> n x 3 x k x k triggers (or one 3 x k x k for all)


def fraction_count(ratio: float, batch: int, rng: random.Random) -> int:
    """How many images of a batch to poison: ratio * batch, stochastically rounded (exact on average)."""
    expected = ratio * batch
    return min(batch, int(math.floor(expected + rng.random())))


def fixed_sampler(trigger: torch.Tensor) -> Sampler:
    return lambda n: trigger


@dataclass(frozen=True)
class Stamper:
    """A trigger that stamps a batch itself: apply(float images n x 3 x H x W, torch.Generator) -> the
    stamped images (e.g. a full-image blend (1 - m) * x + m * p). A patch needs none: a Sampler."""
    apply: Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class StampFraction:
    """Batch transform: stamp triggers from `sampler` at random places (or by a Stamper) on a fraction
    `ratio` of each batch, relabelling those images to `relabel` when given. `sampler` may be swapped
    between epochs (the ensemble defense does); None stamps nothing."""

    def __init__(self, sampler: Sampler | Stamper | None, ratio: float, seed: int = 0, relabel: int | None = None,
                 location: tuple[int, int] | None = None):
        if not 0 <= ratio <= 1:
            raise MesaError(f"poison ratio {ratio} must be within [0, 1]")
        self.sampler, self.ratio, self.seed, self.relabel = sampler, ratio, seed, relabel
        self.location = location  # None: a random place per image; else one (row, col) for all
        self.rng = random.Random(seed)
        self.generators = {}

    def __call__(self, x, y):
        n = fraction_count(self.ratio, len(y), self.rng)
        if n == 0 or self.sampler is None:
            return x, y
        g = self.generators.setdefault(x.device, torch.Generator(device=x.device).manual_seed(self.seed))
        if isinstance(self.sampler, Stamper):
            stamped = self.sampler.apply(x[:n], g)
        else:
            stamped = stamp(x[:n], self.sampler(n).to(x.device), self.location, generator=g)
        x = torch.cat([stamped, x[n:]])
        if self.relabel is not None:
            y = torch.cat([torch.full_like(y[:n], self.relabel), y[n:]])
        return x, y
