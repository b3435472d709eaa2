"""The census: every trigger of a family measured in one batched pass, on hand-made models whose
open triggers are known exactly."""
import pytest
import torch
from torch import nn

from mesa.method.census import CensusConfig, class_rates, closure, family_triggers, summarize, take_census
from mesa.errors import MesaError
from mesa.method.triggers import binary_trigger, parse_trigger


class WhiteCounter(nn.Module):
    """Sends an image to class 0 when at least `need` pure-white pixels are on it (only a stamped
    pattern has any: the images are mid-grey), else to class `other`. So on grey images exactly the
    binary patterns with >= `need` white cells open class 0."""

    def __init__(self, need: int, other: int = 1, num_classes: int = 10):
        super().__init__()
        self.need, self.other, self.num_classes = need, other, num_classes

    def forward(self, x):
        white = (x[:, 0] > 0.99).flatten(1).sum(1)
        label = torch.where(white >= self.need, 0, self.other)
        return nn.functional.one_hot(label, self.num_classes).float() * 10


def grey_images(n=40, num_classes=10):
    images = torch.full((n, 3, 16, 16), 128, dtype=torch.uint8)
    labels = torch.arange(n) % num_classes
    return images, labels


def popcount(n):
    return bin(n).count("1")


def test_binary_family_is_every_pattern_and_names_rebuild_them():
    triggers, names = family_triggers("binary", 3)
    assert triggers.shape == (512, 3, 3, 3) and len(names) == 512
    assert names[170] == "binary:170" and torch.equal(triggers[170], binary_trigger(170))
    colours, specs = family_triggers("color", 3, samples=50, seed=2)
    assert colours.shape == (50, 3, 3, 3)
    assert torch.equal(parse_trigger(specs[7]), colours[7])  # a spec is the trigger
    assert torch.equal(family_triggers("color", 3, samples=50, seed=2)[0], colours)  # seeded
    sampled, specs4 = family_triggers("binary", 4, samples=100, seed=1)
    assert sampled.shape == (100, 3, 4, 4) and torch.equal(parse_trigger(specs4[3], 32), sampled[3])
    with pytest.raises(MesaError, match="--samples"):
        family_triggers("binary", 4)
    with pytest.raises(MesaError, match="unknown census family"):
        CensusConfig(family="plaid")


def test_census_finds_exactly_the_open_patterns():
    images, labels = grey_images()
    model = WhiteCounter(need=7)
    census = take_census(model, images, labels, 10, 0, CensusConfig(images=64), planted=binary_trigger(511))
    expected = {n for n in range(512) if popcount(n) >= 7}  # 36 + 9 + 1 = 46 patterns
    opened = {int(name.split(":")[1]) for name, a in zip(census.names, census.asr) if a >= 0.5}
    assert opened == expected
    assert set(census.asr.unique().tolist()) == {0.0, 1.0}
    s = summarize(census)
    assert s["open"] == 46 and s["open_at"] == {"0.5": 46, "0.8": 46, "0.9": 46}
    assert s["worst_asr"] == 1.0 and s["original_asr"] == 1.0 and s["original_rank"] == 1
    assert s["mean_asr"] == pytest.approx(46 / 512)
    # per class: every other pattern sends every image not of class 1 to class 1
    assert s["open_per_class"] == [46, 512 - 46] + [0] * 8


def test_planted_rank_and_per_class_rates():
    images, labels = grey_images()
    census = take_census(WhiteCounter(need=7), images, labels, 10, 0, CensusConfig(), planted=binary_trigger(0))
    s = summarize(census)
    assert s["original_asr"] == 0.0 and s["original_rank"] == 47  # below the 46 open patterns
    # the target class is left out of the census images; class 1's own images are not counted for class 1
    rates = class_rates(WhiteCounter(need=10), images, labels, binary_trigger(0)[None], 10)
    assert rates[0, 1] == 1.0 and rates[0, 0] == 0.0


def test_closure_against_the_floor():
    before = torch.tensor([0.9, 0.9, 0.9, 0.9, 0.1])
    after = torch.tensor([0.1, 0.1, 0.6, 0.9, 0.9])
    assert closure(before, after) == pytest.approx(0.5)
    floor = torch.tensor([0.0, 0.0, 0.0, 0.8, 0.0])  # the 4th opens even a clean model: not the backdoor's
    assert closure(before, after, floor) == pytest.approx(2 / 3)
    assert closure(torch.zeros(3), torch.zeros(3)) is None


def test_fixed_location_census():
    images, labels = grey_images()
    rates = class_rates(WhiteCounter(need=9), images, labels, binary_trigger(511)[None], 10, location=(0, 0))
    assert rates[0, 0] == 1.0
