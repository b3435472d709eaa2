"""Clean base models shipped in assets/bases (made by bench/train_speed.py --ship), so that no user
trains one: `attack --init` and the sweep fine-tune them into backdoors."""
import hashlib
from pathlib import Path

from mesa.errors import MesaError
from mesa.lab.storage.runs import read_json
from mesa.resources import resource

SHIPPED = resource("bases")


def has_shipped_base(model: str) -> bool:
    return (SHIPPED / f"cifar10-{model}" / "config.json").is_file()


def shipped_base(model: str, classes: list[str]) -> Path | None:
    """The shipped base of this model for data with these classes (CIFAR-10 or a copy of it), if any."""
    path = SHIPPED / f"cifar10-{model}"
    if not (path / "config.json").is_file():
        return None
    return path if read_json(path / "config.json", "base config").get("classes") == list(classes) else None


def base_identity(path: Path, model: str) -> dict:
    """What a sweep's stages key on for a given base: its model and its weights' hash, not its place
    (a moved clone, a fresh one or an installed package finds the same shipped base elsewhere)."""
    config = read_json(path / "config.json", "base config")
    if config.get("model") != model:
        raise MesaError(f"base {path} is a {config.get('model')}, not a {model}")
    weights = path / "model.pt"
    if not weights.is_file():
        raise MesaError(f"base {path} has no model.pt")
    return {"model": model, "weights": hashlib.sha256(weights.read_bytes()).hexdigest()[:16]}
