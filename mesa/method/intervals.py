"""Error bars for the lab's proportions: every ASR and clean accuracy is a count of images out of a
finite sample (256 per census trigger, ~1,800 held-out images for a planted trigger), so each is
reported with a 95% Wilson interval, and two methods are compared across cases with a paired test.

Pure Python (no scipy): Wilson's score interval has a closed form; the sign test is exact.
"""
import math
from statistics import NormalDist

CONFIDENCE = 0.95


def z_value(confidence: float = CONFIDENCE, sides: int = 2) -> float:
    """The normal quantile for a two-sided (or one-sided) bound at `confidence`."""
    return NormalDist().inv_cdf(1 - (1 - confidence) / sides)


def wilson(hits: int, n: int, confidence: float = CONFIDENCE, z: float | None = None) -> tuple[float, float]:
    """Wilson's score interval for hits/n: good coverage down to 0/n and n/n, where the textbook
    p +- z*sqrt(p(1-p)/n) collapses to a point. n = 0 says nothing: [0, 1]."""
    if n <= 0:
        return 0.0, 1.0
    z = z_value(confidence) if z is None else z
    p, z2 = hits / n, z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    scale = 1 + z2 / n
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def rate_ci(rate: float | None, n: int | None) -> list[float] | None:
    """[low, high] of a measured rate on n images (rate * n is a whole count); None when unknown."""
    if rate is None or not n or not math.isfinite(rate):
        return None
    low, high = wilson(round(rate * n), n)
    return [round(low, 4), round(high, 4)]


def overlap(a: list[float] | None, b: list[float] | None) -> bool:
    """Whether two intervals overlap (a difference is read as significant only when they do not)."""
    return a is None or b is None or (a[0] <= b[1] and b[0] <= a[1])


def sign_test(a: list[float], b: list[float]) -> dict:
    """Exact two-sided sign test over paired cases (a[i] vs b[i]): how often a is higher, lower or
    tied, and the p-value of that split if neither method were higher (ties dropped)."""
    wins = sum(x > y for x, y in zip(a, b))
    losses = sum(x < y for x, y in zip(a, b))
    n = wins + losses
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2 ** n if n else 1.0
    return {"higher": wins, "lower": losses, "tied": len(a) - n, "p": min(1.0, 2 * tail)}


def binomial_pmf(i: int, n: int, p: float) -> float:
    """P(Binomial(n, p) = i), in log space (n up to thousands)."""
    if p <= 0 or p >= 1:
        return float(i == (0 if p <= 0 else n))
    log = math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
    return math.exp(log + i * math.log(p) + (n - i) * math.log1p(-p))


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k)."""
    return min(1.0, sum(binomial_pmf(i, n, p) for i in range(min(k, n) + 1)))


def noise_max(mean_rate: float, n: int, triggers: int, quantile: float = CONFIDENCE) -> float:
    """The highest ASR that noise alone gives a census: were every one of `triggers` patterns truly
    at `mean_rate`, the highest of their rates measured on n images each stays below this with
    probability `quantile`. A highest pattern at or under it does not stand out from the rest."""
    cdf = 0.0
    for k in range(n + 1):
        cdf += binomial_pmf(k, n, mean_rate)
        if min(1.0, cdf) ** triggers >= quantile:
            return k / n
    return 1.0
