"""Detection: run a short MESA search toward every class. Only the attacked class admits a whole
distribution of small triggers with high ASR; the others stay near the no-trigger floor. The stage
adds a per-class census (every 3x3 black-white pattern): patterns that open a class are concrete
triggers, the strongest evidence there is, and cheap to take (see `with_census`)."""
import statistics
from dataclasses import asdict, dataclass

from mesa.method.anomaly import CONSISTENCY
from mesa.progress import ProgressFn, ignore
from mesa.method.search import SearchConfig, freeze, generate, per_trigger_asr, train_generator, unfreeze


@dataclass
class DetectionConfig:
    beta: float = 0.8
    epochs: int = 3
    samples: int = 64
    threshold: float = 0.5  # a class whose triggers reach this mean ASR is reported as attacked
    hidden: int | None = None  # generator width: None as the search's (2048 for 100+ classes)
    location: str | None = None  # random or fixed:ROW,COL (stages: the run's)
    search: bool = True  # the per-class search (the slow half of the evidence)
    census_images: int = 32  # held-out images per pattern of the per-class census (0: no census)
    method: str = "mesa"  # an inversion method of mesa/method/registry.py: this search, or one with its own detection
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def detect(model, images, labels, num_classes: int, cfg: DetectionConfig, eval_images=None, eval_labels=None,
           on_progress: ProgressFn = ignore, should_stop=lambda: False) -> dict:
    """Per class: the mean ASR of triggers a short search finds; the outlier is the backdoor's target."""
    eval_images = images if eval_images is None else eval_images
    eval_labels = labels if eval_labels is None else eval_labels
    search_cfg = SearchConfig(betas=[cfg.beta], epochs=cfg.epochs, hidden=cfg.hidden, seed=cfg.seed,
                              location=cfg.location)
    per_class = []
    freeze(model)
    try:
        for c in range(num_classes):
            gen, curve, _ = train_generator(model, images, labels, c, cfg.beta, search_cfg, num_classes,
                                            lambda p, c=c: on_progress(_relabel(p, c, num_classes)), should_stop)
            asr = per_trigger_asr(model, eval_images, eval_labels, generate(gen, cfg.samples, cfg.seed), c, max_images=128,
                                  location=cfg.location)
            per_class.append({"class": c, "mean_asr": asr.mean().item(), "max_asr": asr.max().item()})
            if should_stop():
                break
    finally:
        unfreeze(model)
    best, anomaly = outlier([r["mean_asr"] for r in per_class])
    return {"config": cfg.to_dict(), "per_class": per_class, "suspect": best, "anomaly_index": anomaly,
            "backdoor_detected": per_class[best]["mean_asr"] >= cfg.threshold and anomaly > 2}


def outlier(scores: list[float]) -> tuple[int, float]:
    """The class with the highest score and its distance from the median in MADs (anomaly index)."""
    best = max(range(len(scores)), key=scores.__getitem__)
    median = statistics.median(scores)
    mad = statistics.median(abs(s - median) for s in scores) * CONSISTENCY or 1e-6
    return best, (scores[best] - median) / mad


def with_census(result: dict, open_per_class: list[int], triggers: int) -> dict:
    """Add the census's evidence (per class, how many patterns open it: ASR >= 0.5). An outlier
    class that patterns open names the suspect; the search's outlier does when none is open."""
    best, anomaly = outlier([float(n) for n in open_per_class])
    result = {**result, "census_open_per_class": open_per_class, "census_triggers": triggers,
              "census_anomaly_index": anomaly, "search_suspect": result.get("suspect")}
    if open_per_class[best] > 0 and anomaly > 2:
        result.update(suspect=best, backdoor_detected=True, evidence="census")
    elif result.get("suspect") is not None:
        result["evidence"] = "search"
    return result


def _relabel(p, c, num_classes):
    p.stage = f"detect class {c + 1}/{num_classes}"
    return p
