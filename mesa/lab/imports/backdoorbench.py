"""BackdoorBench's `record/<attack>/attack_result.pt`, read as data (never as code).

The dict holds model_name, num_classes, model (a state dict, maybe with nn.DataParallel's
`module.` prefix), img_size, clean_data and bd_test, the poisoned test set's state. In
BackdoorBench v2 that state is `prepro_cls_DatasetBD_v2.retrieve_state()`: its
`bd_data_container.data_dict` maps each poisoned index to (image, backdoor label, true label), or,
when saved on disk, to {"path": .../bd_test_dataset/<label>/<index>.png, "other_info": [bd label,
label]}. The older v1 layout keeps lists bd_test["x"], ["y"], ["original_targets"].
"""
from pathlib import Path

import numpy as np
import torch

from mesa.architectures import BACKDOORBENCH_MODELS
from mesa.errors import MesaError
from mesa.models import ARCHITECTURES

OUR_DATA = ("cifar10", "cifar100", "synthetic")
MAX_POISONED = 2000  # enough for an ASR to +-0.02; BackdoorBench keeps up to 9,000 for CIFAR-10


def is_backdoorbench(obj) -> bool:
    return isinstance(obj, dict) and "model_name" in obj and "model" in obj


def data_spec(result: dict) -> str:
    """BackdoorBench's clean_data as one of our data sources."""
    name = str(result.get("clean_data", "")).lower()
    if name in OUR_DATA:
        return name
    raise MesaError(f"the file's data set {name or '(none)'!r} has no built-in source here: pass "
                    "--data folder:PATH with its train/<class>/ and test/<class>/ images")


def architecture(result: dict, arch: str | None, num_classes: int | None) -> tuple[str, int]:
    """(our architecture name, class count) from the file, checked against what the user said."""
    name = str(result["model_name"])
    mapped = arch or BACKDOORBENCH_MODELS.get(name) or (name if name in ARCHITECTURES else None)
    if mapped is None:
        raise MesaError(f"BackdoorBench model {name!r} is not supported: use one of "
                        f"{', '.join(BACKDOORBENCH_MODELS)} (or ours: {', '.join(ARCHITECTURES)}), "
                        "or export it as TorchScript")
    try:
        classes = int(result["num_classes"])
    except (KeyError, TypeError, ValueError):
        raise MesaError("the BackdoorBench file has no usable num_classes") from None
    if num_classes is not None and num_classes != classes:
        raise MesaError(f"--num-classes {num_classes} does not match the file's num_classes {classes}")
    return mapped, classes


def check_image_size(result: dict, image_size: int) -> None:
    size = result.get("img_size")
    if size is None:
        return
    try:
        height_width = tuple(int(s) for s in list(size)[:2])
    except (TypeError, ValueError, OverflowError):
        raise MesaError(f"the BackdoorBench file's img_size {str(size)[:40]!r} is not a list of numbers") from None
    if height_width != (image_size, image_size):
        raise MesaError(f"the model was trained on {list(height_width)} images; "
                        f"the data's are {image_size}x{image_size}")


def _to_chw_uint8(img, image_size: int) -> torch.Tensor | None:
    """An image array/tensor (HWC or CHW, uint8 or [0, 1] floats) as uint8 3 x H x W; None if unusable."""
    t = torch.as_tensor(np.asarray(img))
    if t.dim() == 3 and t.shape[-1] == 3 and t.shape[0] != 3:
        t = t.permute(2, 0, 1)
    if t.shape != (3, image_size, image_size):
        return None
    if t.is_floating_point():
        t = (t * 255 if t.max() <= 1 else t).round().clamp(0, 255)
    return t.to(torch.uint8).contiguous()


def _read_png(entry_path: str, folder: Path, image_size: int) -> torch.Tensor | None:
    """A poisoned image saved on disk, looked up only inside the result's own folder."""
    from PIL import Image, UnidentifiedImageError

    parts = Path(str(entry_path)).parts
    local = folder.joinpath(*parts[-3:]) if len(parts) >= 3 else None  # bd_test_dataset/<label>/<i>.png
    if local is None or not local.is_file():
        return None
    try:
        with Image.open(local) as im:  # its size, from the header, is checked before any pixel is decoded
            if im.size != (image_size, image_size):
                return None
            return _to_chw_uint8(np.asarray(im.convert("RGB")), image_size)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError):
        return None


def _entries(bd_test) -> list[tuple]:
    """(image or {"path"}, backdoor label, true label) per poisoned test image, v2 or v1 layout."""
    if not isinstance(bd_test, dict):
        return []
    container = bd_test.get("bd_data_container")
    if isinstance(container, dict) and isinstance(container.get("data_dict"), dict):
        out = []
        for value in container["data_dict"].values():
            if isinstance(value, dict) and "path" in value:
                info = list(value.get("other_info") or [])
                if len(info) >= 2:
                    out.append((value, info[0], info[1]))
            elif isinstance(value, (tuple, list)) and len(value) >= 3:
                out.append(tuple(value[:3]))
        return out
    xs, ys, orig = bd_test.get("x"), bd_test.get("y"), bd_test.get("original_targets")
    if xs is None or ys is None or orig is None:
        return []
    return list(zip(xs, ys, orig))


def _label(value) -> int:
    try:
        label = int(value)
        if not 0 <= label < 2**31:
            raise ValueError
        return label
    except (TypeError, ValueError, OverflowError):
        raise MesaError(f"the BackdoorBench file's poisoned test labels are not class numbers "
                        f"(e.g. {str(value)[:40]!r})") from None


def poisoned_images(result: dict, file: Path, image_size: int) -> tuple[dict | None, dict]:
    """The attacker's poisoned test images as {"images", "labels" (backdoor), "original"}, or None,
    and a note for the run's source record (how many were found and read)."""
    entries = _entries(result.get("bd_test"))[:MAX_POISONED]
    images, labels, original = [], [], []
    for img, bd_label, label in entries:
        if isinstance(img, dict):
            x = _read_png(img["path"], file.parent, image_size)
        else:
            try:
                x = _to_chw_uint8(img, image_size)
            except (TypeError, ValueError, RuntimeError):
                x = None
        if x is not None:
            images.append(x)
            labels.append(_label(bd_label))
            original.append(_label(label))
    note = {"poisoned_in_file": len(entries), "poisoned_read": len(images)}
    if not images:
        return None, note
    return {"images": torch.stack(images), "labels": torch.tensor(labels), "original": torch.tensor(original)}, note
