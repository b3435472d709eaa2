"""Backdoor a classifier: train it (from scratch or from a clean base) with a poisoned fraction of
every batch. mesa/lab/pipeline/attack_stage.py opens the base and saves the result as a run."""
import time
from dataclasses import dataclass

from mesa.errors import MesaError
from mesa.method.metrics import evaluate
from mesa.method.poison import StampFraction, fixed_sampler
from mesa.progress import ProgressFn, ignore
from mesa.train import TrainConfig, train_classifier
from mesa.training_recipes import recipe


SHIPPED = "shipped"  # --init's name for the clean base that ships for the model (assets/bases)


@dataclass
class AttackConfig:
    data: str = "synthetic"
    model: str = "small"
    trigger: str = "binary:170"
    target: int = 0
    poison_ratio: float = 0.01
    epochs: int = 10
    init: str | None = None  # a run to fine-tune (SHIPPED: the clean base in assets/bases); None trains from scratch
    lr: float | None = None  # default: the model's recipe from scratch (mesa/training_recipes.py), 1e-3 constant when fine-tuning (paper)
    batch_size: int | None = None  # default: the model's recipe from scratch, 128 when fine-tuning
    train_images: int | None = None  # train on this many training images drawn at random (a live demo); None: all
    seed: int = 0
    location: str = "random"  # where the trigger is stamped: random (the paper's rule) or fixed:ROW,COL
    precision: str = "auto"  # bf16 autocast where the device runs it natively, or fp32 / bf16
    device: str = "auto"
    out: str | None = None  # runs folder

    def __post_init__(self):
        if self.lr is not None and not 0 < self.lr < float("inf"):  # 0 would train nothing, silently
            raise MesaError(f"--lr must be a positive number, not {self.lr}")
        if self.train_images is not None and self.train_images < 1:
            raise MesaError(f"--train-images must be at least 1, not {self.train_images}")

    def train_config(self) -> TrainConfig:
        if self.init is not None:  # the paper's attack: a gentle fine-tune of a converged model
            settings = {"lr": 1e-3, "schedule": "constant", "weight_decay": 0.0, "batch_size": 128}
        else:
            settings = {"lr": 0.2, "schedule": "onecycle", "weight_decay": 5e-4, "batch_size": 128, **recipe(self.model)}
        chosen = {"lr": self.lr, "batch_size": self.batch_size}
        settings.update({k: v for k, v in chosen.items() if v is not None})
        return TrainConfig(epochs=self.epochs, seed=self.seed, precision=self.precision, **settings)


def plant_backdoor(model, data, trigger, location, cfg: AttackConfig, on_progress: ProgressFn = ignore,
                   should_stop=lambda: False) -> tuple[list[dict], dict]:
    """Train `model` (on the data's device) with a fraction of each batch stamped and relabelled to
    the target; returns (per-epoch history, final test metrics with their intervals)."""
    train_cfg = cfg.train_config()
    start = time.time()
    history = train_classifier(
        model, data.train_images, data.train_labels, train_cfg,
        batch_transform=StampFraction(fixed_sampler(trigger), cfg.poison_ratio, cfg.seed, cfg.target, location),
        evaluate=lambda m: evaluate(m, data.test_images, data.test_labels, trigger, cfg.target, location, intervals=False),
        on_progress=on_progress, should_stop=should_stop)
    metrics = evaluate(model, data.test_images, data.test_labels, trigger, cfg.target, location)
    metrics["train_seconds"] = round(time.time() - start, 1)
    return history, metrics
