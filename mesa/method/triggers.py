"""Triggers (3 x k x k tensors in pixel space [0, 1]) and stamping them onto image batches."""
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from mesa.errors import MesaError


def binary_trigger(number: int, k: int = 3) -> torch.Tensor:
    """Pattern `number` of k*k bits, most-significant first, row-major, same value in all channels."""
    if not 0 <= number < 2 ** (k * k):
        raise MesaError(f"binary pattern {number} is out of range for {k}x{k}: use 0..{2 ** (k * k) - 1}")
    bits = [(number >> (k * k - 1 - i)) & 1 for i in range(k * k)]
    return torch.tensor(bits, dtype=torch.float32).view(1, k, k).expand(3, k, k).clone()


def pattern_number(bits: torch.Tensor) -> int:
    """Inverse of `binary_trigger` for a k x k 0/1 grid."""
    return int("".join(str(int(b)) for b in bits.flatten().tolist()), 2)


def _symmetries(grid: torch.Tensor) -> list[torch.Tensor]:
    """The 8 rotations/flips of a square grid, each also colour-inverted: 16 variants."""
    variants = []
    for g in (grid, grid.flip(-1)):
        for r in range(4):
            rotated = torch.rot90(g, r, (-2, -1))
            variants += [rotated, 1 - rotated]
    return variants


@lru_cache(maxsize=None)
def canonical_patterns(k: int = 3) -> tuple[int, ...]:
    """The smallest number of each class of k x k patterns equal up to rotation, flip and inversion."""
    if k > 4:
        raise MesaError("canonical patterns are enumerated for k <= 4")
    seen, reps = set(), []
    for n in range(2 ** (k * k)):
        if n in seen:
            continue
        grid = binary_trigger(n, k)[0]
        seen.update(pattern_number(v) for v in _symmetries(grid))
        reps.append(n)
    return tuple(reps)


def color_trigger(seed: int, k: int = 3) -> torch.Tensor:
    """A k x k trigger of random colours, deterministic from the seed."""
    return torch.rand(3, k, k, generator=torch.Generator().manual_seed(seed))


MAX_TRIGGER_SIDE = 256  # a quarter of the largest image side the app offers (1024)
MAX_TRIGGER_FILE_BYTES = 1 << 20  # a 256 x 256 PNG holds at most ~200 KB of pixels


def image_trigger(path, image_size: int | None = None) -> torch.Tensor:
    """A trigger read from a PNG/JPEG file; at most a quarter of the image side when that is known.
    The file's size, then the image's size from its header, are checked before any pixel is decoded:
    a small PNG can declare 20000 x 20000 pixels."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise MesaError(f"trigger file {path} does not exist")
    if path.stat().st_size > MAX_TRIGGER_FILE_BYTES:
        raise MesaError(f"trigger file {path} is over {MAX_TRIGGER_FILE_BYTES >> 20} MiB: a trigger is a few pixels")
    side = image_size // 4 if image_size is not None else MAX_TRIGGER_SIDE
    try:
        with Image.open(path) as img:
            w, h = img.size
            if max(w, h) > side:
                raise MesaError(f"trigger {path} is {w}x{h}: at most {side}x{side}"
                                + (f" (a quarter of the {image_size}-pixel image side)" if image_size else ""))
            pixels = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32).copy())
    except Image.DecompressionBombError:  # raised by Image.open itself for over 2 x MAX_IMAGE_PIXELS
        raise MesaError(f"trigger {path} declares a huge image: at most {side}x{side}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise MesaError(f"trigger file {path} is not a readable image ({e})") from None
    return (pixels / 255).permute(2, 0, 1).contiguous()


def parse_trigger(spec: str, image_size: int | None = None) -> torch.Tensor:
    """`binary:N[:K]`, `color:SEED[:K]` or `file:PATH`."""
    kind, _, arg = spec.partition(":")
    if kind == "file" and arg:
        return image_trigger(arg, image_size)
    if kind in ("binary", "color") and arg:
        number, _, k = arg.partition(":")
        try:
            number, k = int(number), int(k or 3)
        except ValueError:
            raise MesaError(f"bad trigger {spec!r}: expected {kind}:INTEGER[:SIZE]") from None
        if not 1 <= k <= (image_size // 4 if image_size else 8):
            raise MesaError(f"bad trigger size {k} in {spec!r}")
        return binary_trigger(number, k) if kind == "binary" else color_trigger(number, k)
    raise MesaError(f"unknown trigger {spec!r}: use binary:N, color:SEED or file:PATH")


def parse_location(spec: str | None) -> tuple[int, int] | None:
    """`random` -> None (a new place per image, the paper's rule); `fixed:ROW,COL` -> the top-left
    corner every trigger is stamped at (many attacks, BackdoorBench's BadNets among them, use one)."""
    if spec in (None, "", "random"):
        return None
    kind, _, arg = spec.partition(":")
    try:
        row, col = (int(v) for v in arg.split(","))
    except ValueError:
        row = col = -1
    if kind != "fixed" or row < 0 or col < 0:
        raise MesaError(f"bad location {spec!r}: use random or fixed:ROW,COL (e.g. fixed:0,0)")
    return row, col


def check_location(location: tuple[int, int] | None, image_size: int, k: int) -> None:
    if location is not None and max(location) > image_size - k:
        raise MesaError(f"a {k}x{k} trigger at {location} does not fit on {image_size}x{image_size} images")


def random_locations(n: int, image_size: int, k: int, device, generator=None) -> torch.Tensor:
    """Top-left corners (n x 2: row, col) for a k x k trigger, uniform over valid positions."""
    return torch.randint(0, image_size - k + 1, (n, 2), device=device, generator=generator)


def stamp(images: torch.Tensor, triggers: torch.Tensor, locations: torch.Tensor | None = None,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """Paste a trigger (3 x k x k) or one per image (N x 3 x k x k) onto a batch, vectorised.

    `locations` is N x 2 (row, col) or one (row, col) for all; random per image when None.
    Works on uint8 (triggers rounded to pixels) and float batches; differentiable w.r.t. the
    trigger for float inputs. Returns a new tensor; the input is not modified.
    """
    n, _, h, w = images.shape
    k_h, k_w = triggers.shape[-2:]
    if k_h > h or k_w > w:
        raise MesaError(f"trigger {k_h}x{k_w} does not fit on {h}x{w} images")
    if locations is None:
        locations = random_locations(n, min(h, w), max(k_h, k_w), images.device, generator)
    locations = torch.as_tensor(locations, device=images.device).long().expand(n, 2)
    rows = locations[:, :1] + torch.arange(k_h, device=images.device)  # n x k_h
    cols = locations[:, 1:] + torch.arange(k_w, device=images.device)  # n x k_w
    patch = triggers.expand(n, -1, -1, -1).permute(0, 2, 3, 1)  # n x k_h x k_w x 3
    if images.dtype == torch.uint8:
        patch = (patch.detach() * 255).round().clamp(0, 255).to(torch.uint8)
    else:
        patch = patch.to(images.dtype)
    out = images.permute(0, 2, 3, 1).clone()  # n x h x w x 3 view of a copy
    batch = torch.arange(n, device=images.device)[:, None, None]
    out[batch, rows[:, :, None], cols[:, None, :]] = patch
    return out.permute(0, 3, 1, 2)
