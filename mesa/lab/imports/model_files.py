"""Model files read as data: state dicts (.safetensors, or .pt/.pth through torch.load(weights_only=True),
numpy arrays allowed) and BackdoorBench results. A file that needs pickled code to open is refused with
the line that re-saves it as a state dict. A TorchScript program is code (loading it can run its
`__setstate__`, calling it runs its `forward`): it is opened only when the caller trusts it.

Nothing is read before its size is known: a zip's entries (torch.save files are zips) are checked
against MAX_UNPACKED_BYTES, so a small file that inflates to gigabytes is refused before torch.load."""
import hashlib
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from mesa.lab.imports import backdoorbench
from mesa.errors import MesaError
from mesa.lab.storage.runs import TORCHSCRIPT

FORMATS = ("auto", "torchscript", "state-dict", "backdoorbench")
MAX_UNPACKED_BYTES = 768 << 20  # what a file may unpack to: torchvision's VGG-16-BN (540 MB) fits, 1 GiB does not
UNTRUSTED_CODE = ("{name} is a TorchScript program, which is code: MESA Lab runs code from a file only when told to "
                  "trust it (python -m mesa import FILE --trust-code, on the command line; the app never runs "
                  "uploaded code: upload its state dict instead)")
RESAVE = ("if you trust it, re-save its weights as a plain state dict: python -c \"import torch; "
          "m = torch.load('{file}', weights_only=False); torch.save(getattr(m, 'state_dict', lambda: m)(), "
          "'weights.pt')\" (for a BackdoorBench dict, save {{k: m[k] for k in ('model_name', 'num_classes', "
          "'model', 'img_size', 'clean_data')}}), then import that")


def _numpy_globals() -> list:
    """Plain numpy arrays and scalars (BackdoorBench stores indices and images so): no code in them."""
    from numpy._core import multiarray

    dtypes = [type(np.dtype(t)) for t in (np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16,
                                          np.float16, np.float32, np.float64, np.bool_)]
    plain = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtypes]
    # files written with numpy 1.x name the module numpy.core
    legacy = [(multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
              (multiarray.scalar, "numpy.core.multiarray.scalar")]
    return plain + legacy


def read_weights(path: Path):
    """torch.load(weights_only=True) with numpy arrays allowed; refuses pickled code with a clear line."""
    try:
        with torch.serialization.safe_globals(_numpy_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. "Detected pickle protocol 4": the error says it all
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged files
        needed = re.search(r"GLOBAL ([\w.]+)", str(e))  # torch names the class or function it refused
        if needed:
            raise MesaError(f"{path.name} can only be opened by running pickled code ({needed.group(1)}); MESA Lab "
                            f"will not run it. {RESAVE.format(file=path)}") from None
        raise MesaError(f"{path.name} is not a readable model file: truncated, damaged or another format "
                        f"({type(e).__name__}); expected TorchScript, a state dict (.pt/.pth/.safetensors) "
                        "or a BackdoorBench attack_result.pt") from None


def _entries(path: Path) -> list[zipfile.ZipInfo]:
    """A zip's entries as its central directory declares them (what torch's reader allocates); [] for
    another file."""
    if not zipfile.is_zipfile(path):
        return []
    try:
        with zipfile.ZipFile(path) as z:
            return z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise MesaError(f"{path.name} is not a readable model file: a damaged zip ({e})") from None


def check_unpacked_size(path: Path, entries: list[zipfile.ZipInfo]) -> None:
    """Refuse a file that would unpack to more than MAX_UNPACKED_BYTES: a zip by its entries' declared
    sizes, another file (safetensors, an old torch.save) by its own size."""
    total = sum(e.file_size for e in entries) if entries else path.stat().st_size
    if total > MAX_UNPACKED_BYTES:
        big = max(entries, key=lambda e: e.file_size).filename if entries else path.name
        raise MesaError(f"{path.name} unpacks to {total / 2**20:.0f} MiB (e.g. {big}): over the "
                        f"{MAX_UNPACKED_BYTES >> 20} MiB a model file may hold")


def detect_format(path: Path, entries: list[zipfile.ZipInfo] | None = None) -> str:
    if path.suffix == ".safetensors":
        return "state-dict"
    names = [e.filename for e in (_entries(path) if entries is None else entries)]
    if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
        return TORCHSCRIPT
    return "pickle"  # a torch.save file: a state dict or a BackdoorBench result, told apart once read


def state_dict_of(obj, path: Path) -> dict:
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise MesaError(f"{path.name} holds no state dict (a dict of tensor names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}  # nn.DataParallel's prefix


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise MesaError(f"{path.name} is not a readable .safetensors file ({str(e).splitlines()[0][:120]})") from None


def read_model_file(path: Path, fmt: str = "auto", trust_code: bool = False):
    """(format, object): a TorchScript module (only when trust_code), a BackdoorBench dict or a state
    dict, read safely."""
    if fmt not in FORMATS:
        raise MesaError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    entries = _entries(path)
    detected = detect_format(path, entries)
    if (fmt == TORCHSCRIPT or detected == TORCHSCRIPT) and not trust_code:
        raise MesaError(UNTRUSTED_CODE.format(name=path.name))
    check_unpacked_size(path, entries)
    if fmt == TORCHSCRIPT or (fmt == "auto" and detected == TORCHSCRIPT):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
                return TORCHSCRIPT, torch.jit.load(str(path), map_location="cpu")
        except Exception as e:  # torch.jit raises RuntimeError and others on damaged programs
            raise MesaError(f"{path.name} is not a readable TorchScript program ({type(e).__name__})") from None
    obj = _read_safetensors(path) if path.suffix == ".safetensors" else read_weights(path)
    if backdoorbench.is_backdoorbench(obj):
        return "backdoorbench", obj
    if fmt == "backdoorbench":
        raise MesaError(f"{path.name} is not a BackdoorBench attack_result.pt (no model_name and model keys)")
    return "state-dict", state_dict_of(obj, path)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
