"""How much of the trigger distribution MESA's samples reach. The paper promises a *distribution* of
working triggers; the census says how many there are. Each sample is mapped to one census member
(its binarised pattern, or for colour censuses the nearest colour trigger); the histogram of those
members says how many distinct triggers the samples are (distinct, modes) and how much of the
census's open set they hit (coverage, open_share). A collapsed generator has few modes and low coverage.
"""
import math
from collections import Counter
from dataclasses import asdict, dataclass

import torch

from mesa.method.census import OPEN, Census, spec

BINARISED = "binarised (grey > 0.5)"
NEAREST = "nearest colour census member"


def pattern_numbers(samples: torch.Tensor) -> torch.Tensor:
    """N x 3 x k x k triggers -> the number of each one's binarised pattern (grey, the channel mean,
    > 0.5), numbered as binary_trigger numbers them: bits most-significant first, row-major."""
    k = samples.shape[-1]
    bits = (samples.float().mean(1) > 0.5).flatten(1).long()
    weights = 2 ** torch.arange(k * k - 1, -1, -1, dtype=torch.long)
    return bits @ weights


def nearest_members(samples: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """For each sample, the index of the closest member (Euclidean distance over all pixels)."""
    return torch.cdist(samples.float().flatten(1), members.float().flatten(1)).argmin(1)


def member_names(samples: torch.Tensor, census: Census | None = None) -> tuple[list[str], str]:
    """The census member each sample falls on, and how it was found: the nearest member of a colour
    census of the same trigger size, else the binarised pattern (binary:N[:K])."""
    k = samples.shape[-1]
    if census is not None and census.family == "color" and census.triggers.shape[-1] == k:
        return [census.names[i] for i in nearest_members(samples, census.triggers).tolist()], NEAREST
    return [spec("binary", n, k) for n in pattern_numbers(samples).tolist()], BINARISED


def effective_modes(names: list[str]) -> float:
    """exp(entropy) of the histogram of names: 1 when all are one, n for n equally common ones."""
    counts = torch.tensor(list(Counter(names).values()), dtype=torch.float64)
    p = counts / counts.sum()
    return math.exp(-(p * p.log()).sum().item())


@dataclass
class Coverage:
    distinct: int  # distinct census members the samples fall on
    modes: float  # effective number of modes, exp(entropy)
    basis: str  # how samples were mapped to members (BINARISED or NEAREST)
    hit: int | None = None  # open members hit by at least one sample (None: no census to compare with)
    open: int | None = None  # the census's open set (ASR >= 0.5)
    open_share: float | None = None  # share of samples whose member is itself open

    @property
    def coverage(self) -> float | None:
        return self.hit / self.open if self.open else None

    def to_dict(self) -> dict:
        """The flat keys a search's summary carries; the census's keys only when there is one."""
        d = {k: v for k, v in asdict(self).items() if v is not None}
        return d if self.open is None else {**d, "coverage": self.coverage}


def open_names(census: Census) -> set[str]:
    return {n for n, a in zip(census.names, census.asr.tolist()) if a >= OPEN}


def coverage_of(samples: torch.Tensor, census: Census | None = None) -> Coverage:
    """Distinct members and modes of the samples; with a census (of the backdoored model, same trigger
    size) also the share of its open set they hit. Patterns a sampled census never measured count as closed."""
    names, basis = member_names(samples, census)
    result = Coverage(len(set(names)), effective_modes(names), basis)
    if census is None or census.triggers.shape[-1] != samples.shape[-1]:
        return result
    opened = open_names(census)
    result.hit, result.open = len(opened & set(names)), len(opened)
    result.open_share = sum(n in opened for n in names) / len(names)
    return result
