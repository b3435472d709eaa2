"""The MAD anomaly index (of per-class reversed-trigger sizes, Wang et al. 2019): how far a
class's score lies from the median of all classes, in consistent median absolute deviations."""
import math
import statistics

CONSISTENCY = 1.4826  # MAD -> standard deviation for normal data
ANOMALY_THRESHOLD = 2.0  # the flag: more than 2 MADs from the median


def anomaly_indices(norms: list[float]) -> tuple[list[float], float, float]:
    """Each value's distance from the median in consistent MADs (1.4826 x MAD), the median and that
    MAD. A zero MAD (half the values equal) puts every other value at infinity."""
    median = statistics.median(norms)
    mad = CONSISTENCY * statistics.median(abs(v - median) for v in norms)
    indices = [abs(v - median) / mad if mad > 0 else (0.0 if v == median else math.inf) for v in norms]
    return indices, median, mad


def flagged(norms: list[float], threshold: float = ANOMALY_THRESHOLD) -> list[int]:
    """Positions of the values below the median by more than `threshold` MADs, most anomalous first
    (a trigger larger than usual is no backdoor: the reference skips those above the median)."""
    indices, median, _ = anomaly_indices(norms)
    hits = [i for i, v in enumerate(norms) if v <= median and indices[i] > threshold]
    return sorted(hits, key=lambda i: -indices[i])
