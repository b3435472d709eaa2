"""Backdoor a classifier: train (from scratch or from a saved run) with a poisoned fraction of
every batch, then save the result as a run. The CLI's `attack` and the app both call `run_attack`."""
import time
from dataclasses import asdict, dataclass

from mesa.data import load_data
from mesa.device import resolve_device
from mesa.errors import MesaError
from mesa.method.metrics import evaluate
from mesa.models import build_model
from mesa.method.poison import StampFraction, fixed_sampler
from mesa.progress import ProgressFn, ignore
from mesa.lab.runs import load_run, save_run
from mesa.train import TrainConfig, train_classifier
from mesa.training_recipes import recipe
from mesa.method.triggers import check_location, parse_location, parse_trigger


@dataclass
class AttackConfig:
    data: str = "synthetic"
    model: str = "small"
    trigger: str = "binary:170"
    target: int = 0
    poison_ratio: float = 0.01
    epochs: int = 10
    init: str | None = None  # a run to fine-tune; None trains from scratch
    lr: float | None = None  # default: the model's recipe from scratch (mesa/training_recipes.py), 1e-3 constant when fine-tuning (paper)
    batch_size: int | None = None  # default: the model's recipe from scratch, 128 when fine-tuning
    seed: int = 0
    location: str = "random"  # where the trigger is stamped: random (the paper's rule) or fixed:ROW,COL
    precision: str = "auto"  # bf16 autocast where the device runs it natively, or fp32 / bf16
    device: str = "auto"
    out: str | None = None  # runs folder

    def __post_init__(self):
        if self.lr is not None and not 0 < self.lr < float("inf"):  # 0 would train nothing, silently
            raise MesaError(f"--lr must be a positive number, not {self.lr}")

    def train_config(self) -> TrainConfig:
        if self.init is not None:  # the paper's attack: a gentle fine-tune of a converged model
            settings = {"lr": 1e-3, "schedule": "constant", "weight_decay": 0.0, "batch_size": 128}
        else:
            settings = {"lr": 0.2, "schedule": "onecycle", "weight_decay": 5e-4, "batch_size": 128, **recipe(self.model)}
        chosen = {"lr": self.lr, "batch_size": self.batch_size}
        settings.update({k: v for k, v in chosen.items() if v is not None})
        return TrainConfig(epochs=self.epochs, seed=self.seed, precision=self.precision, **settings)


def run_attack(cfg: AttackConfig, on_progress: ProgressFn = ignore, should_stop=lambda: False, data=None):
    """Train and save a backdoored run; returns (run path, final metrics). `data` may be preloaded."""
    device = resolve_device(cfg.device)
    data = data or load_data(cfg.data)
    if not 0 <= cfg.target < data.num_classes:
        raise MesaError(f"target class {cfg.target} out of range: {cfg.data} has classes 0..{data.num_classes - 1}")
    trigger = parse_trigger(cfg.trigger, data.image_size)
    location = parse_location(cfg.location)
    check_location(location, data.image_size, trigger.shape[-1])
    if cfg.init:
        base = load_run(cfg.init, device)
        if base.config.get("classes") != data.classes or base.config["model"] != cfg.model:
            raise MesaError(f"--init run {cfg.init} is a {base.config['model']} on {base.config['data']}, "
                            f"not a {cfg.model} on {cfg.data}'s classes")
        model = base.model
    else:
        model = build_model(cfg.model, data.num_classes, data.mean, data.std).to(device)
        model.init_from_data(data.train_images)
    data = data.to(device)
    train_cfg = cfg.train_config()
    start = time.time()
    history = train_classifier(
        model, data.train_images, data.train_labels, train_cfg,
        batch_transform=StampFraction(fixed_sampler(trigger), cfg.poison_ratio, cfg.seed, cfg.target, location),
        evaluate=lambda m: evaluate(m, data.test_images, data.test_labels, trigger, cfg.target, location, intervals=False),
        on_progress=on_progress, should_stop=should_stop)
    metrics = evaluate(model, data.test_images, data.test_labels, trigger, cfg.target, location)
    metrics["train_seconds"] = round(time.time() - start, 1)
    metrics["device"] = str(device)
    config = {**asdict(cfg), "num_classes": data.num_classes, "classes": data.classes, "mean": list(data.mean),
              "std": list(data.std), "image_size": data.image_size, "train": train_cfg.to_dict()}
    config.pop("out")
    config.pop("device")
    path = save_run(cfg.out, config, model, trigger, metrics, history)
    return path, metrics
