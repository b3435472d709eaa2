"""The embedded data set: ten shape classes on textured backgrounds, made from a seed in seconds.

It exists so that tests, CI and offline demos have real, learnable images without a download.
"""
import numpy as np
import torch

CLASSES = ("disk", "square", "triangle", "ring", "plus", "cross", "diamond", "bar", "frame", "dots")


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


def make_synthetic(n: int, seed: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (uint8, N x 3 x size x size) and balanced labels, deterministic from the seed."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASSES))
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
    s = rng.uniform(5, 9, (n, 1, 1)).astype(np.float32)
    cx, cy = rng.uniform(10, size - 10, (2, n, 1, 1)).astype(np.float32)
    theta = rng.uniform(-0.25, 0.25, (n, 1, 1)).astype(np.float32)
    dx, dy = xx - cx, yy - cy
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    mask = np.zeros((n, size, size), dtype=bool)
    for label in range(len(CLASSES)):
        idx = labels == label
        mask[idx] = _shape_masks(label, u[idx], v[idx], s[idx])
    images = np.where(mask[:, None], fg[:, :, None, None], images)
    images += rng.normal(0, 0.04, images.shape).astype(np.float32)
    pixels = np.clip(np.round(images * 255), 0, 255).astype(np.uint8)
    return torch.from_numpy(pixels), torch.from_numpy(labels.astype(np.int64))
