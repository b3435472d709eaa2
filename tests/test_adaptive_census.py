"""The adaptive census on a hand-made model whose open set is known exactly: it reads the stamped 3x3
pattern and answers the target class for some patterns always, for some only on bright images (3 in
4), never for the rest. So the verdicts at 0.5, 0.8 and 0.9 are known for all 512 patterns."""
import torch
from torch import nn

from mesa.method.adaptive_census import looks, uncertain
from mesa.method.census import CensusConfig, summarize, take_census
from mesa.method.intervals import wilson

CENTRE, CORNER = 1 << 4, 1 << 8  # bits of pattern N, most significant first, row-major


class PatternReader(nn.Module):
    """Finds the stamped pattern (the only pure black/white pixels: backgrounds are mid-tones), reads
    its number, and sends the image to class 0 when the pattern has its centre and corner cells white,
    or its centre white and the image is bright; else to class 1."""

    def forward(self, x):
        extreme = ((x == 0) | (x == 1)).all(1)  # B x H x W
        b, h, w = extreme.shape
        first = extreme.flatten(1).float().argmax(1)  # the pattern's top-left cell: the first extreme pixel
        row, col = first // w, first % w
        rows, cols = row[:, None, None] + torch.arange(3)[:, None], col[:, None, None] + torch.arange(3)
        bits = x[torch.arange(b)[:, None, None], 0, rows, cols].flatten(1) > 0.5  # B x 9, row-major
        number = (bits.long() << torch.arange(8, -1, -1)).sum(1)
        bright = (x[:, 0] * ~extreme).sum((1, 2)) / (~extreme).sum((1, 2)) > 0.5
        centre, corner = (number & CENTRE) > 0, (number & CORNER) > 0
        label = torch.where(centre & (corner | bright), 0, 1)
        return nn.functional.one_hot(label, 10).float() * 10


def images(n=300):
    """Mid-tone images, every 10th of class 0; of the others, 3 in 4 bright (in every look's prefix)."""
    labels = torch.arange(n) % 10
    rank = (labels != 0).cumsum(0) - 1  # place among the images outside the target class
    x = torch.full((n, 3, 7, 7), 60, dtype=torch.uint8)
    x[rank % 4 != 0] = 180
    return x, labels


def test_looks_double_up_to_every_image():
    assert looks(256) == [32, 64, 128, 256] and looks(20) == [20] and looks(100) == [32, 64, 100]


def test_uncertain_only_where_a_threshold_is_inside_the_bounds():
    hits, n = torch.tensor([0, 32, 20, 16]), torch.tensor([32, 32, 32, 32])
    assert uncertain(hits, n, z=1.96, thresholds=(0.5,)).tolist() == [False, False, True, True]
    assert uncertain(hits, n, z=1.96, thresholds=(0.5, 0.9)).tolist() == [False, True, True, True]
    assert wilson(20, 32)[0] < 0.5 < wilson(20, 32)[1] and wilson(32, 32)[0] < 0.9  # the same bounds as Wilson's


def test_adaptive_census_matches_the_known_open_set_with_less_work():
    x, y = images()
    model = PatternReader()
    adaptive = take_census(model, x, y, 10, 0, CensusConfig(images=128))
    exhaustive = take_census(model, x, y, 10, 0, CensusConfig(images=128, exhaustive=True))
    numbers = range(512)
    always = {n for n in numbers if n & CENTRE and n & CORNER}
    bright = {n for n in numbers if n & CENTRE and not n & CORNER}
    for census in (adaptive, exhaustive):
        asr = dict(zip(range(512), census.asr.tolist()))
        assert {n for n in numbers if asr[n] >= 0.5} == always | bright  # exact verdicts
        assert {n for n in numbers if asr[n] >= 0.8} == always
        assert all(asr[n] == 0.75 for n in bright) and all(asr[n] == 1.0 for n in always)
    a, e = summarize(adaptive), summarize(exhaustive)
    assert a["open"] == e["open"] == 256 and a["open_at"] == e["open_at"] == {"0.5": 256, "0.8": 128, "0.9": 128}
    closed = torch.tensor([n not in always | bright for n in numbers])
    assert (adaptive.counts[closed] == 32).all()  # plainly closed after the first look
    assert (adaptive.counts[~closed] == 128).all() and (exhaustive.counts == 128).all()
    assert a["measured_images"] == 256 * 128 + 256 * 32 < e["measured_images"] == 512 * 128
    assert a["worst_asr"] == 1.0 and int(a["worst_trigger"].split(":")[1]) in always
    assert a["worst_asr_ci"] == [round(v, 4) for v in wilson(128, 128)] and a["images"] == 128
    assert a["worst_asr_fresh"] == 1.0 and a["worst_asr_fresh_ci"][1] == 1.0  # re-measured on fresh images
    assert a["noise_max"] <= 1.0


def test_census_summary_keys_and_no_nan():
    import json

    x, y = images(200)
    census = take_census(PatternReader(), x, y, 10, 0, CensusConfig(images=64),
                         planted=torch.ones(3, 3, 3))  # all white: centre and corner, always open
    s = summarize(census)
    for key in ("worst_asr_ci", "original_asr_ci", "noise_max", "worst_asr_fresh_ci", "images", "measured_images"):
        assert key in s
    assert s["original_asr"] == 1.0 and s["original_asr_ci"][1] == 1.0
    json.dumps(s, allow_nan=False)
