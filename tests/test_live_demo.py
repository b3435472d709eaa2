"""The live demo on real images: `demo --data`, from the shipped clean base (`--init shipped`),
on a random part of the training set. Here on a small folder shaped as a CIFAR-10 copy (its ten
class names, 32x32 images drawn by the embedded generator): the real copy is not in the suite."""
import json

import pytest
from PIL import Image

from mesa.data import load_data
from mesa.errors import MesaError
from mesa.lab.cli.main import main
from mesa.lab.pipeline import presets
from mesa.lab.storage.bases import SHIPPED
from mesa.lab.storage.runs import read_json
from mesa.synthetic import make_synthetic

CIFAR10 = read_json(SHIPPED / "cifar10-small" / "config.json", "base config")["classes"]


def cifar_shaped_folder(root, per_class=(12, 12)):
    """train/ and test/ folders named as CIFAR-10's classes, holding the embedded data's images."""
    for split, count, seed in (("train", per_class[0], 1), ("test", per_class[1], 2)):
        images, labels = make_synthetic(count * 10, seed)
        for i, (image, label) in enumerate(zip(images, labels.tolist())):
            folder = root / split / CIFAR10[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    return root


def test_a_training_subset_is_drawn_by_the_seed_and_keeps_the_test_set():
    data = load_data("synthetic:200")
    part = data.with_train_subset(50, seed=3)
    assert part.train_images.shape[0] == 50 and part.test_images is data.test_images
    assert (part.train_images == data.with_train_subset(50, seed=3).train_images).all()
    assert not (part.train_images == data.with_train_subset(50, seed=4).train_images).all()
    assert data.with_train_subset(10**6) is data


def test_live_data_takes_cifar10_or_an_existing_folder_and_says_one_line_otherwise(tmp_path):
    assert presets.live_data("cifar10") == "cifar10"
    assert presets.live_data(f"folder:{tmp_path}") == f"folder:{tmp_path}"
    for spec, says in ((f"folder:{tmp_path / 'nowhere'}", "no CIFAR-10 folder"), ("folder:", "no CIFAR-10 folder"),
                       ("synthetic", "runs on CIFAR-10")):
        with pytest.raises(MesaError, match=says) as e:
            presets.live_data(spec)
        assert "\n" not in str(e.value)


def test_the_live_preset_fine_tunes_the_shipped_base():
    preset = presets.builtin()[presets.LIVE_DEMO]
    attack = presets.attack_config(preset)
    assert attack.init == "shipped" and attack.train_images and attack.model == "small"
    assert {"ensemble", "mesa:0.9"} & set(preset["defense"]["methods"]) and "baseline" in preset and "census" in preset


def test_init_shipped_without_a_base_for_the_data_is_one_line(capsys):
    assert main(["attack", "--data", "synthetic:200", "--init", "shipped", "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no shipped clean base of the small model for synthetic:200's classes" in err and "\n" not in err


def test_demo_data_without_cifar10_is_one_line(capsys, tmp_path):
    assert main(["demo", "--data", f"folder:{tmp_path / 'missing'}", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no CIFAR-10 folder" in err and "\n" not in err


def test_the_live_demo_runs_end_to_end_on_a_cifar_shaped_folder(tmp_path, capsys):
    """From the shipped base, every stage on the folder: the run remembers which base it started from."""
    folder = cifar_shaped_folder(tmp_path / "cifar")
    assert main(["demo", "--data", f"folder:{folder}", "--out", str(tmp_path / "runs"), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    config = read_json(tmp_path / "runs" / out["run"].split("/")[-1] / "config.json", "run config")
    assert config["init"] == str(SHIPPED / "cifar10-small") and config["train_images"] == 10000
    assert config["data"] == f"folder:{folder}"
    methods = [d["method"] for d in out["defenses"]]
    assert methods == presets.builtin()[presets.LIVE_DEMO]["defense"]["methods"]
    assert all(d["census"]["after"]["triggers"] == 512 for d in out["defenses"])


def test_the_overview_starts_the_live_demo_on_a_folder_and_names_a_missing_one(tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    import ui.common

    submitted = []  # what the button would queue (the page imports submit from ui.common on each run)
    monkeypatch.setattr(ui.common, "submit", lambda kind, label, work, *a, **k: submitted.append(label))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=60)
    at.run()
    box = next(t for t in at.text_input if t.label == "CIFAR-10 data")
    assert box.value == ""  # no CIFAR-10 in this cache: the user names it
    box.set_value(f"folder:{tmp_path / 'missing'}").run()
    next(b for b in at.button if b.label == "Run the live demo").click().run()
    assert [e.value for e in at.error] == [f"no CIFAR-10 folder at {str(tmp_path / 'missing')!r}: give a folder "
                                           "with train/ and test/ class folders, or cifar10 to download it"]
    assert not submitted
    next(t for t in at.text_input if t.label == "CIFAR-10 data").set_value(f"folder:{tmp_path}").run()
    next(b for b in at.button if b.label == "Run the live demo").click().run()
    assert submitted == ["live demo on CIFAR-10"] and not at.error
