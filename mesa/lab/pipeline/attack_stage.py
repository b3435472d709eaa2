"""The attack as a stage: build the model (or open the clean base it fine-tunes), plant the backdoor
(mesa/method/attack.py) and save the result as a new run."""
from dataclasses import asdict

from mesa.data import load_data
from mesa.device import resolve_device
from mesa.errors import MesaError
from mesa.lab.storage.bases import shipped_base
from mesa.lab.storage.runs import load_run, save_run
from mesa.method.attack import SHIPPED, AttackConfig, plant_backdoor
from mesa.method.triggers import check_location, parse_location, parse_trigger
from mesa.models import build_model
from mesa.progress import ProgressFn, ignore


def run_attack(cfg: AttackConfig, on_progress: ProgressFn = ignore, should_stop=lambda: False, data=None):
    """Train and save a backdoored run; returns (run path, final metrics). `data` may be preloaded."""
    device = resolve_device(cfg.device)
    data = data or load_data(cfg.data)
    if not 0 <= cfg.target < data.num_classes:
        raise MesaError(f"target class {cfg.target} out of range: {cfg.data} has classes 0..{data.num_classes - 1}")
    trigger = parse_trigger(cfg.trigger, data.image_size)
    location = parse_location(cfg.location)
    check_location(location, data.image_size, trigger.shape[-1])
    if len(data.train_labels) == 0:
        raise MesaError(f"{cfg.data} holds test images only: an attack trains on a full data set (cifar10, folder:PATH)")
    if cfg.train_images is not None:
        data = data.with_train_subset(cfg.train_images, cfg.seed)
    init = base_path(cfg, data.classes) if cfg.init else None
    if init:
        base = load_run(init, device)
        if base.config.get("classes") != data.classes or base.config["model"] != cfg.model:
            raise MesaError(f"--init run {cfg.init} is a {base.config['model']} on {base.config['data']}, "
                            f"not a {cfg.model} on {cfg.data}'s classes")
        model = base.model
    else:
        model = build_model(cfg.model, data.num_classes, data.mean, data.std).to(device)
        model.init_from_data(data.train_images)
    data = data.to(device)
    history, metrics = plant_backdoor(model, data, trigger, location, cfg, on_progress, should_stop)
    metrics["device"] = str(device)
    config = {**asdict(cfg), "num_classes": data.num_classes, "classes": data.classes, "mean": list(data.mean),
              "std": list(data.std), "image_size": data.image_size, "train": cfg.train_config().to_dict()}
    config["init"] = init and str(init)  # what "shipped" named, kept with the run
    config.pop("out")
    config.pop("device")
    path = save_run(cfg.out, config, model, trigger, metrics, history)
    return path, metrics


def base_path(cfg: AttackConfig, classes: list[str]):
    """The run `--init` names; "shipped": the clean base of this model that ships for these classes."""
    if cfg.init != SHIPPED:
        return cfg.init
    path = shipped_base(cfg.model, classes)
    if path is None:
        raise MesaError(f"no shipped clean base of the {cfg.model} model for {cfg.data}'s classes: "
                        "one ships for CIFAR-10 (or a copy of it) only; pass --init RUN or train from scratch")
    return path
