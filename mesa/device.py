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


PRECISIONS = ("auto", "fp32", "bf16")


def bf16_is_native(device: torch.device) -> bool:
    """Whether the device runs bf16 matrix maths in hardware (CUDA with bf16, CPUs with AVX-512 BF16 or
    AMX); elsewhere bf16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def uses_bf16(precision: str, device: torch.device) -> bool:
    """`auto`: bf16 where native, else fp32; `fp32` and `bf16` force one."""
    if precision not in PRECISIONS:
        raise MesaError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    return precision == "bf16" or (precision == "auto" and bf16_is_native(device))


def autocast(device: torch.device, precision: str = "auto"):
    """The forward pass's precision context: bf16 autocast (weights and updates stay fp32) or none."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(precision, device))
