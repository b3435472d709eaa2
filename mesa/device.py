"""Pick the compute device once, from a user's `auto|cpu|cuda` choice."""
import torch

from mesa.errors import MesaError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MesaError(f"device {name!r} asked for, but no CUDA GPU is available (use --device cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise MesaError(f"unknown device {name!r}: use auto, cpu or cuda") from e
