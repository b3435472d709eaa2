import functools
import time

import pytest
import torch
from PIL import Image

from mesa import data as data_module
from mesa import image_folder
from mesa.data import (cached_data, defense_split, is_local, load_data, load_folder, load_synthetic, load_torchvision,
                       warm_in_background)
from mesa.errors import MesaError


def test_synthetic_is_deterministic_and_well_formed():
    a = load_synthetic(n_train=200, n_test=100)
    b = load_synthetic(n_train=200, n_test=100)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    assert a.train_images.dtype == torch.uint8 and a.train_images.shape == (200, 3, 32, 32)
    assert a.train_labels.dtype == torch.int64 and a.num_classes == 10
    assert torch.bincount(a.train_labels).tolist() == [20] * 10
    assert not torch.equal(a.train_images[:100], a.test_images)
    assert len(a.mean) == 3 and all(0.2 < s < 0.4 for s in a.std)


def test_synthetic_is_drawn_once_then_read_back_and_a_corrupt_cache_is_redrawn(isolated_dirs, monkeypatch):
    drawn = load_synthetic(n_train=200, n_test=100)
    (cache_file,) = (isolated_dirs / "cache" / "synthetic").glob("synthetic-200-100-0-*.pt")
    with monkeypatch.context() as m:
        m.setattr(data_module, "make_synthetic", lambda *a, **k: pytest.fail("drawn again"))
        again = load_synthetic(n_train=200, n_test=100)
    assert torch.equal(again.train_images, drawn.train_images) and again.mean == drawn.mean
    cache_file.write_bytes(b"not a torch file")
    redrawn = load_synthetic(n_train=200, n_test=100)
    assert torch.equal(redrawn.test_images, drawn.test_images) and cache_file.stat().st_size > 100


def test_racing_callers_load_once_and_the_warm_up_never_downloads(isolated_dirs, monkeypatch):
    calls = []

    def slow_load(spec):
        calls.append(spec)
        time.sleep(0.2)
        return spec.upper()

    monkeypatch.setattr(data_module, "_loaded", functools.lru_cache(maxsize=2)(slow_load))
    warm = warm_in_background("synthetic")
    assert cached_data("synthetic") == "SYNTHETIC"  # whichever thread came first, the other waited for its load
    warm.join()
    assert calls == ["synthetic"]
    assert warm_in_background("cifar10") is None and not is_local("cifar10")  # no copy on disk: no download
    (isolated_dirs / "cache" / "torchvision" / "cifar-10-batches-py").mkdir(parents=True)
    assert is_local("cifar10") and is_local("folder:/anywhere") and not is_local("cifar100")


def _make_folder(root, sizes=((8, 8),), per_class=3):
    for split in ("train", "test"):
        for c, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", sizes[i % len(sizes)], colour).save(d / f"{i}.png")


def test_folder_source_and_cache_reuse(tmp_path, monkeypatch):
    _make_folder(tmp_path / "imgs", sizes=((8, 8), (16, 16)))
    first = load_data(f"folder:{tmp_path / 'imgs'}")
    assert first.classes == ["cat", "dog"]
    assert first.train_images.shape == (6, 3, 8, 8)  # resized to the first image's size
    assert first.train_labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert first.train_images[0, 0].float().mean() > 250 and first.train_images[3, 2].float().mean() > 250

    def no_decoding(_):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(image_folder, "decode_listing", no_decoding)
    second = load_folder(tmp_path / "imgs")
    assert torch.equal(first.train_images, second.train_images) and first.mean == second.mean


def test_cache_is_keyed_by_listing(tmp_path):
    _make_folder(tmp_path / "imgs")
    a = load_folder(tmp_path / "imgs")
    Image.new("RGB", (8, 8), (0, 255, 0)).save(tmp_path / "imgs" / "train" / "cat" / "new.png")
    b = load_folder(tmp_path / "imgs")
    assert len(b.train_labels) == len(a.train_labels) + 1


def test_folder_errors(tmp_path):
    with pytest.raises(MesaError, match="does not exist"):
        load_folder(tmp_path / "nothing")
    (tmp_path / "x" / "train" / "a").mkdir(parents=True)
    with pytest.raises(MesaError, match="no test/"):
        load_folder(tmp_path / "x")
    (tmp_path / "x" / "test" / "a").mkdir(parents=True)
    with pytest.raises(MesaError, match="one class folder"):
        load_folder(tmp_path / "x")
    for split in ("train", "test"):
        (tmp_path / "x" / split / "b").mkdir()
    with pytest.raises(MesaError, match="no images"):
        load_folder(tmp_path / "x")


def test_cifar_offline_error_says_where_to_put_files(tmp_path, monkeypatch):
    from torchvision import datasets

    def offline(self):
        raise OSError("network is unreachable")

    monkeypatch.setattr(datasets.CIFAR10, "download", offline)
    with pytest.raises(MesaError) as err:
        load_torchvision("cifar10", root=tmp_path / "tv")
    assert "cifar-10-python.tar.gz" in str(err.value) and str(tmp_path / "tv") in str(err.value)


def test_unknown_source():
    with pytest.raises(MesaError, match="unknown data source"):
        load_data("imagenet")


def test_defense_split_is_fixed_and_disjoint():
    images = torch.arange(100).view(100, 1, 1, 1).expand(100, 3, 2, 2).to(torch.uint8)
    labels = torch.arange(100)
    a = defense_split(images, labels)
    b = defense_split(images, labels)
    assert len(a[1]) == 80 and len(a[3]) == 20
    assert torch.equal(a[1], b[1])
    assert set(a[1].tolist()).isdisjoint(a[3].tolist())
    assert torch.equal(a[0][:, 0, 0, 0].long(), a[1])  # images travel with their labels
