import random

import pytest
import torch

from mesa.errors import MesaError
from mesa.method.poison import StampFraction, Stamper, fixed_sampler, fraction_count
from mesa.method.triggers import binary_trigger


def test_fraction_count_is_exact_on_average():
    rng = random.Random(0)
    counts = [fraction_count(0.01, 128, rng) for _ in range(5000)]
    assert abs(sum(counts) / len(counts) - 1.28) < 0.05
    assert fraction_count(1.0, 128, rng) == 128 and fraction_count(0.0, 128, rng) == 0


def test_poison_attack_relabels_the_stamped_images():
    transform = StampFraction(fixed_sampler(binary_trigger(511)), ratio=0.25, relabel=7)
    x, y = torch.zeros(8, 3, 8, 8), torch.arange(8)
    px, py = transform(x, y)
    stamped = px.flatten(1).sum(1) > 0
    assert stamped.sum() == 2 and (py[stamped] == 7).all() and torch.equal(py[~stamped], y[~stamped])
    with pytest.raises(MesaError):
        StampFraction(fixed_sampler(binary_trigger(1)), 1.5)


def test_defense_keeps_labels():
    transform = StampFraction(fixed_sampler(torch.ones(3, 3, 3)), ratio=0.5, seed=0)
    x, y = torch.zeros(8, 3, 8, 8), torch.arange(8)
    px, py = transform(x, y)
    assert torch.equal(py, y) and (px.flatten(1).sum(1) > 0).sum() == 4


def test_a_stamper_stamps_what_is_not_a_patch():
    """A full-image blend (Neural Cleanse's (1 - m) x + m p) stamps the chosen fraction itself."""
    mask, pattern = torch.full((1, 8, 8), 0.5), torch.ones(3, 8, 8)
    blend = Stamper(lambda x, g: (1 - mask) * x + mask * pattern)
    transform = StampFraction(blend, ratio=0.5, seed=0)
    x, y = torch.zeros(8, 3, 8, 8), torch.arange(8)
    px, py = transform(x, y)
    assert torch.equal(py, y) and (px.flatten(1) == 0.5).all(1).sum() == 4 and (px.flatten(1) == 0).all(1).sum() == 4
