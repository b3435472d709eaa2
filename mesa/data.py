"""Image data sources, all yielding the same `ImageData`: uint8 tensors, labels, class names, mean/std.

Sources: `synthetic` and `synthetic100` (embedded, 10 or 100 classes, drawn once then cached; `:N` for N training images,
N/5 test images, default 10000), `cifar10`, `cifar100` (torchvision, cached), `folder:PATH`
(an image-folder tree with train/<class>/* and test/<class>/*, decoded once and cached), and
`cifar10-sample` (2,000 real CIFAR-10 test images shipped in assets/cifar10-test-sample: no training images).
"""
import functools
import hashlib
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from mesa import atomic, image_folder, synthetic
from mesa.errors import MesaError
from mesa.resources import resource
from mesa.synthetic import CLASSES as SYNTHETIC_CLASSES, CLASSES_100, make_synthetic

CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}  # torchvision's extracted copies
SAMPLE = "cifar10-sample"


@dataclass
class ImageData:
    name: str
    classes: list[str]
    train_images: torch.Tensor  # uint8, N x 3 x H x W
    train_labels: torch.Tensor  # int64, N
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: tuple[float, float, float]  # per channel, pixel space [0, 1]
    std: tuple[float, float, float]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return self.train_images.shape[-1]

    def to(self, device) -> "ImageData":
        moved = {k: getattr(self, k).to(device) for k in ("train_images", "train_labels", "test_images", "test_labels")}
        return ImageData(self.name, self.classes, mean=self.mean, std=self.std, **moved)

    def with_train_subset(self, count: int, seed: int = 0) -> "ImageData":
        """`count` training images drawn at random (fixed by the seed): a short live attack trains on
        them; the test set, which every later stage uses, is kept whole."""
        if count >= len(self.train_labels):
            return self
        pick = torch.randperm(len(self.train_labels), generator=torch.Generator().manual_seed(seed))[:count]
        pick = pick.to(self.train_labels.device)
        return replace(self, train_images=self.train_images[pick], train_labels=self.train_labels[pick])


def cache_root() -> Path:
    """Where downloads and decoded caches live: $MESA_CACHE, else ~/.cache/mesa-lab."""
    return Path(os.environ.get("MESA_CACHE", Path.home() / ".cache" / "mesa-lab"))


def channel_stats(images: torch.Tensor) -> tuple[tuple, tuple]:
    x = images[:10000].float() / 255
    return tuple(x.mean((0, 2, 3)).tolist()), tuple(x.std((0, 2, 3)).tolist())


def _make(name, classes, train, test) -> ImageData:
    mean, std = channel_stats(train[0])
    return ImageData(name, list(classes), train[0], train[1], test[0], test[1], mean, std)


def _read_cache(path: Path, name: str, classes: list) -> ImageData | None:
    """A decoded or drawn data set saved by `_write_cache`; None when absent. A corrupt cache is
    removed and rebuilt, never trusted."""
    if not path.exists():
        return None
    try:
        blob = torch.load(path, weights_only=True)
        return ImageData(name, list(classes), **blob["tensors"], mean=tuple(blob["mean"]), std=tuple(blob["std"]))
    except Exception:
        path.unlink(missing_ok=True)
        return None


def _write_cache(path: Path, data: ImageData) -> None:
    tensors = {k: getattr(data, k) for k in ("train_images", "train_labels", "test_images", "test_labels")}
    atomic.write_torch(path, {"tensors": tensors, "mean": list(data.mean), "std": list(data.std)})


def load_synthetic(n_train: int = 10000, n_test: int = 2000, seed: int = 0, num_classes: int = 10,
                   cache: bool = True) -> ImageData:
    """The embedded data, drawn (2-4 s for the default size on 2 cores) or read back from the cache,
    keyed by the sizes, the seed and the generator's own source, so a changed generator redraws."""
    name, classes = ("synthetic", SYNTHETIC_CLASSES) if num_classes == 10 else ("synthetic100", CLASSES_100)
    source = hashlib.sha256(Path(synthetic.__file__).read_bytes()).hexdigest()[:12]
    cache_file = cache_root() / "synthetic" / f"{name}-{n_train}-{n_test}-{seed}-{source}.pt"
    data = _read_cache(cache_file, name, classes) if cache else None
    if data is None:
        data = _make(name, classes, make_synthetic(n_train, seed, num_classes=num_classes),
                     make_synthetic(n_test, seed + 1, num_classes=num_classes))
        if cache:
            _write_cache(cache_file, data)
    return data


def _synthetic_spec(spec: str) -> ImageData | None:
    """`synthetic[100][:N]`: the embedded data, N training images (default 10000) and N/5 test images."""
    name, _, size = spec.partition(":")
    if name not in ("synthetic", "synthetic100"):
        return None
    if size and not (size.isdigit() and int(size) >= 100):
        raise MesaError(f"bad data source {spec!r}: {name}:N takes a number of training images >= 100")
    n = int(size or 10000)
    return load_synthetic(n, n // 5, num_classes=100 if name == "synthetic100" else 10)


def load_torchvision(name: str, root: Path | None = None, download: bool = True) -> ImageData:
    """CIFAR-10/100 via torchvision, from a copy in the cache when there is one."""
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    root = Path(root or cache_root() / "torchvision")
    splits = []
    for train in (True, False):
        try:
            ds = cls(root, train=train, download=False)
        except RuntimeError:
            if not download:
                raise MesaError(_missing_message(name, root)) from None
            try:
                ds = cls(root, train=train, download=True)
            except Exception as e:  # network errors come in many types
                raise MesaError(f"{_missing_message(name, root)} (download failed: {type(e).__name__}: {e})") from None
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        splits.append((images, torch.tensor(ds.targets, dtype=torch.int64)))
    return _make(name, ds.classes, splits[0], splits[1])


def _missing_message(name: str, root: Path) -> str:
    archive = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}[name]
    folder = CIFAR_FOLDERS[name]
    return (f"{name} is not in {root} and could not be downloaded; put {archive} there (or its "
            f"extracted folder {root / folder}), or use --data folder:PATH with an image-folder copy")


def load_folder(root, cache: bool = True) -> ImageData:
    """An image-folder tree; decoded once, then cached keyed by the folder's listing."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MesaError(f"image folder {root} does not exist")
    listing = image_folder.list_folder(root)
    classes = [c for c, _ in listing["train"]]
    cache_file = cache_root() / "folders" / f"{image_folder.listing_key(listing)}.pt"
    cached = _read_cache(cache_file, f"folder:{root}", classes) if cache else None
    if cached is not None:
        return cached
    train, test = image_folder.decode_listing(listing)
    data = _make(f"folder:{root}", classes, train, test)
    if cache:
        _write_cache(cache_file, data)
    return data


def load_cifar10_sample() -> ImageData:
    """The CIFAR-10 test images that ship with MESA Lab (200 per class; provenance in the folder's
    README.md): a CIFAR-10 model can be imported, searched, defended (on the defender's 80% of them)
    and probed on real images with no download. No training images: an attack needs a full copy."""
    root = resource(SAMPLE)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    files = [(label, p) for label, c in enumerate(classes) for p in sorted((root / c).iterdir())
             if p.suffix.lower() in image_folder.IMAGE_SUFFIXES]
    images = torch.stack([image_folder.decode_image(p, None) for _, p in files])
    labels = torch.tensor([label for label, _ in files])
    mean, std = channel_stats(images)
    return ImageData(SAMPLE, classes, images[:0], labels[:0], images, labels, mean, std)


def load_data(spec: str) -> ImageData:
    """`synthetic[100][:N]`, `cifar10`, `cifar100`, `folder:PATH` or `cifar10-sample`."""
    data = _synthetic_spec(spec)
    if data is not None:
        return data
    if spec == SAMPLE:
        return load_cifar10_sample()
    if spec in ("cifar10", "cifar100"):
        return load_torchvision(spec)
    if spec.startswith("folder:") and len(spec) > len("folder:"):
        return load_folder(spec[len("folder:"):])
    raise MesaError(f"unknown data source {spec!r}: use synthetic, synthetic100, cifar10, cifar100, folder:PATH "
                    f"or {SAMPLE}")


_loaded = functools.lru_cache(maxsize=2)(load_data)
_loading = threading.Lock()


def cached_data(spec: str) -> ImageData:
    """A data set loaded once per process (from the disk caches above after the first), however many
    jobs, cases or page runs read it; read-only. Thread-safe: a caller arriving while another loads
    waits for that load instead of drawing the data a second time."""
    with _loading:
        return _loaded(spec)


def warm_in_background(spec: str) -> threading.Thread | None:
    """Start loading `spec` into `cached_data` on a daemon thread, when that needs no download: a
    server calls it at start so its first page with images (a class opening it at once) does not
    wait for the embedded data's draw (~3 s). A load that fails here fails again, with its
    message, where a page asks for the data."""
    if not is_local(spec):
        return None
    thread = threading.Thread(target=_load_quietly, args=(spec,), name=f"warm {spec}", daemon=True)
    thread.start()
    return thread


def _load_quietly(spec: str) -> None:
    try:
        cached_data(spec)
    except Exception:  # noqa: BLE001  (reported where the data is really asked for)
        pass


def is_local(spec: str) -> bool:
    """Whether loading `spec` needs no download: the embedded data, an image folder, a CIFAR copy on disk."""
    if spec in CIFAR_FOLDERS:
        return (cache_root() / "torchvision" / CIFAR_FOLDERS[spec]).is_dir()
    return spec == SAMPLE or spec.startswith(("synthetic", "folder:"))


def defense_split(images: torch.Tensor, labels: torch.Tensor, fraction: float = 0.8, seed: int = 0):
    """The paper's split of the test set: (modeling images, labels, held-out images, labels).

    The first part is what the defender owns (trigger modeling and retraining); the rest is held
    out for evaluation. Fixed by the seed so every method sees the same split.
    """
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(labels), generator=g).to(labels.device)
    cut = int(round(fraction * len(labels)))
    return images[perm[:cut]], labels[perm[:cut]], images[perm[cut:]], labels[perm[cut:]]
