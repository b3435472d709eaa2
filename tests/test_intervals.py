"""Interval arithmetic against published values (Newcombe 1998, Table I: Wilson score intervals)."""
import json
import math

import pytest

from mesa.method.intervals import binomial_cdf, noise_max, overlap, rate_ci, sign_test, wilson


@pytest.mark.parametrize("hits, n, low, high", [
    (0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)])
def test_wilson_matches_published_values(hits, n, low, high):
    lo, hi = wilson(hits, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_edges_and_rates():
    assert wilson(0, 0) == (0.0, 1.0)
    assert rate_ci(0.5, 10) == [0.2366, 0.7634]
    assert rate_ci(13 / 256, 256) == list(map(lambda v: round(v, 4), wilson(13, 256)))
    assert rate_ci(float("nan"), 256) is None and rate_ci(None, 256) is None and rate_ci(0.1, 0) is None
    json.dumps(rate_ci(0.0, 256), allow_nan=False)  # never NaN
    narrower = wilson(50, 100, confidence=0.9)
    assert narrower[0] > wilson(50, 100)[0]


def test_overlap():
    assert overlap([0.1, 0.3], [0.25, 0.4]) and not overlap([0.1, 0.2], [0.21, 0.4]) and overlap(None, [0, 1])


def test_sign_test_exact():
    assert sign_test([2] * 8, [1] * 8) == {"higher": 8, "lower": 0, "tied": 0, "p": pytest.approx(2 / 256)}
    seven = sign_test([2] * 7 + [0], [1] * 8)
    assert seven["p"] == pytest.approx(2 * 9 / 256)  # 0.0703: not significant at 0.05
    assert sign_test([1, 2, 3], [1, 2, 3]) == {"higher": 0, "lower": 0, "tied": 3, "p": 1.0}
    assert sign_test([3, 1], [1, 3])["p"] == 1.0


def test_binomial_cdf_and_noise_max():
    assert binomial_cdf(7, 10, 0.5) == pytest.approx(0.9453125)
    assert binomial_cdf(10, 10, 0.3) == pytest.approx(1.0)
    assert noise_max(0.5, 10, 1) == 0.8  # one trigger: its own 95% quantile
    assert noise_max(0.0, 256, 512) == 0.0
    # the highest of 512 patterns at a true 0.03 on 256 images: about 0.07 by noise alone
    top = noise_max(0.03, 256, 512)
    assert 0.05 < top < 0.09 and binomial_cdf(round(top * 256), 256, 0.03) ** 512 >= 0.95
    assert math.isclose(noise_max(0.03, 256, 1), min(k / 256 for k in range(257) if binomial_cdf(k, 256, 0.03) >= 0.95))
