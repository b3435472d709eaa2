"""An image-folder tree (train/<class>/* and test/<class>/*) read into uint8 tensors: listed,
checked, keyed by its listing (so a cache can tell when files change) and decoded in threads."""
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from mesa.errors import MesaError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
Listing = dict[str, list[tuple[str, list[Path]]]]


def list_folder(root: Path) -> Listing:
    """{split: [(class, [files])]} for train/ and test/, classes sorted by name."""
    listing = {}
    for split in ("train", "test"):
        split_dir = root / split
        if not split_dir.is_dir():
            raise MesaError(f"{root} has no {split}/ folder: expected {split}/<class>/<image files>")
        classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
        if not classes:
            raise MesaError(f"{split_dir} has no class folders")
        listing[split] = [(c, sorted(p for p in (split_dir / c).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
                          for c in classes]
    train_classes = [c for c, _ in listing["train"]]
    if len(train_classes) < 2:  # no other class to send to the target: every ASR would be 0/0
        raise MesaError(f"{root} has one class folder ({train_classes[0]}): a classifier needs at least two")
    if train_classes != [c for c, _ in listing["test"]]:
        raise MesaError(f"{root}: train/ and test/ have different class folders")
    for split, entries in listing.items():
        empty = [c for c, files in entries if not files]
        if empty:
            raise MesaError(f"{root / split}: no images in class folder(s) {', '.join(empty)}")
    return listing


def listing_key(listing: Listing) -> str:
    """A hash of every file's name, size and modification time."""
    h = hashlib.sha256()
    for split, entries in listing.items():
        for c, files in entries:
            for p in files:
                st = p.stat()
                h.update(f"{split}/{c}/{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def decode_image(path: Path, size: int | None) -> torch.Tensor:
    """One image file as uint8 3 x H x W, resized (bilinear, antialiased) to size x size if given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if size is not None and img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
    except (UnidentifiedImageError, OSError) as e:
        raise MesaError(f"cannot decode image {path}: {e}") from None


def _width(path: Path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size[0]
    except OSError as e:
        raise MesaError(f"cannot decode image {path}: {e}") from None


def decode_listing(listing: Listing) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(train images, labels), (test images, labels)], every image resized to the first one's size."""
    size = _width(listing["train"][0][1][0])
    splits = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for split in ("train", "test"):
            files = [(label, p) for label, (_, ps) in enumerate(listing[split]) for p in ps]
            images = list(pool.map(lambda p: decode_image(p, size), [p for _, p in files], chunksize=256))
            splits.append((torch.stack(images), torch.tensor([label for label, _ in files])))
    return splits
