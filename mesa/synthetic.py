"""The embedded data sets, made from a seed in seconds: ten shape classes on textured backgrounds,
and a 100-class variant (each shape in ten colours) for the paper's 100-class path (no offline
CIFAR-100 copy exists).

They exist so that tests, CI and offline demos have real, learnable images without a download.
"""
import numpy as np
import torch

CLASSES = ("disk", "square", "triangle", "ring", "plus", "cross", "diamond", "bar", "frame", "dots")
# the 100-class variant: class = colour * 10 + shape; colours far apart, drawn on grey-ish backgrounds
PALETTE = {"red": (0.9, 0.1, 0.1), "green": (0.1, 0.75, 0.1), "blue": (0.1, 0.2, 0.9), "yellow": (0.95, 0.9, 0.1),
           "magenta": (0.9, 0.1, 0.9), "cyan": (0.1, 0.9, 0.9), "orange": (1.0, 0.55, 0.0), "black": (0.0, 0.0, 0.0),
           "white": (1.0, 1.0, 1.0), "purple": (0.45, 0.0, 0.65)}
CLASSES_100 = tuple(f"{colour}-{shape}" for colour in PALETTE for shape in CLASSES)


def _shape_masks(label: int, u: np.ndarray, v: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Inside-shape mask for one class; u, v are rotated offsets from the centre, s the size."""
    au, av, r = np.abs(u), np.abs(v), np.hypot(u, v)
    d = (au + av) / np.sqrt(2)
    e = np.abs(u - v) / np.sqrt(2)
    f = np.abs(u + v) / np.sqrt(2)
    if label == 0:
        return r <= s
    if label == 1:
        return np.maximum(au, av) <= 0.8 * s
    if label == 2:
        return (v <= 0.7 * s) & (v >= 1.8 * au - 0.9 * s)
    if label == 3:
        return (r <= s) & (r >= 0.55 * s)
    if label == 4:
        return ((au <= 0.3 * s) & (av <= s)) | ((av <= 0.3 * s) & (au <= s))
    if label == 5:
        return ((e <= 0.3 * s) & (f <= s)) | ((f <= 0.3 * s) & (e <= s))
    if label == 6:
        return d <= 0.8 * s
    if label == 7:
        return (av <= 0.3 * s) & (au <= 1.2 * s)
    if label == 8:
        m = np.maximum(au, av)
        return (m <= 0.9 * s) & (m >= 0.55 * s)
    return (np.hypot(au - 0.6 * s, v) <= 0.4 * s)


def make_synthetic(n: int, seed: int, size: int = 32, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (uint8, N x 3 x size x size) and balanced labels, deterministic from the seed.

    num_classes 10: the shape is the class, its colour random. 100: the shape and its colour (one of
    PALETTE, jittered) together are the class, so a model must learn both."""
    if num_classes not in (10, 100):
        raise ValueError(f"synthetic data has 10 or 100 classes, not {num_classes}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes)
    shapes = labels % len(CLASSES)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    # background: two colours blended by a random low-frequency wave, plus pixel noise
    c0, c1 = rng.uniform(0, 1, (2, n, 3, 1, 1)).astype(np.float32)
    freq = rng.uniform(0.1, 0.6, (n, 2, 1, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    wave = 0.5 + 0.5 * np.sin(freq[:, 0] * xx + freq[:, 1] * yy + phase)
    images = c0 * (1 - wave[:, None]) + c1 * wave[:, None]
    # foreground: a shape of random colour (kept away from the background's mean), size, place, tilt
    fg = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    bg_mean = 0.5 * (c0 + c1).reshape(n, 3)
    close = np.abs(fg - bg_mean).mean(1) < 0.25
    fg[close] = np.clip(1.0 - bg_mean[close] + rng.uniform(-0.1, 0.1, (close.sum(), 3)), 0, 1)
    if num_classes == 100:  # palette colour, jittered, on a background pulled to greys (0.25-0.75)
        fg = np.clip(np.array(list(PALETTE.values()), np.float32)[labels // len(CLASSES)] + 0.1 * (fg - 0.5), 0, 1)
        grey = images.mean(1, keepdims=True)
        images = 0.25 + 0.5 * grey + 0.2 * (images - grey)
    s = rng.uniform(5, 9, (n, 1, 1)).astype(np.float32)
    cx, cy = rng.uniform(10, size - 10, (2, n, 1, 1)).astype(np.float32)
    theta = rng.uniform(-0.25, 0.25, (n, 1, 1)).astype(np.float32)
    dx, dy = xx - cx, yy - cy
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    mask = np.zeros((n, size, size), dtype=bool)
    for label in range(len(CLASSES)):
        idx = shapes == label
        mask[idx] = _shape_masks(label, u[idx], v[idx], s[idx])
    images = np.where(mask[:, None], fg[:, :, None, None], images)
    images += rng.normal(0, 0.04, images.shape).astype(np.float32)
    pixels = np.clip(np.round(images * 255), 0, 255).astype(np.uint8)
    return torch.from_numpy(pixels), torch.from_numpy(labels.astype(np.int64))
