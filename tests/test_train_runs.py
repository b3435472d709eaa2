import json

import pytest
import torch

from mesa.errors import MesaError
from mesa.models import build_model
from mesa.lab.storage.runs import list_runs, load_run, save_run
from mesa.train import TrainConfig, augment, train_classifier
from mesa.method.triggers import binary_trigger


def test_augment_keeps_shape_and_content():
    x = torch.rand(16, 3, 32, 32)
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    assert torch.allclose(out.mean(), x.mean(), atol=0.05)


def test_training_learns_and_reports_progress():
    torch.manual_seed(0)
    labels = torch.randint(0, 2, (256,))
    images = (labels.view(-1, 1, 1, 1) * 200 + 20).expand(-1, 3, 16, 16).to(torch.uint8).contiguous()
    model = build_model("small", 2)
    events = []
    history = train_classifier(model, images, labels, TrainConfig(epochs=2, batch_size=32, lr=0.05),
                               evaluate=lambda m: {"clean_acc": 1.0}, on_progress=events.append)
    assert [h["epoch"] for h in history] == [1, 2] and history[-1]["train_acc"] > 0.9
    assert events[-1].step == events[-1].total == 16 and "loss" in events[0].values


def test_run_round_trip(tmp_path):
    model = build_model("small", 10).eval()
    config = {"data": "synthetic", "model": "small", "num_classes": 10, "mean": [0.5] * 3, "std": [0.25] * 3,
              "trigger": "binary:170", "target": 3}
    path = save_run(tmp_path, config, model, binary_trigger(170), {"asr": 0.5}, [{"epoch": 1}])
    assert list_runs(tmp_path) == [path]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    run = load_run(path)
    x = torch.rand(4, 3, 32, 32)
    assert torch.equal(run.model(x), model(x))
    assert run.target == 3 and run.metrics == {"asr": 0.5} and torch.equal(run.trigger, binary_trigger(170))
    assert save_run(tmp_path, config, model, name=path.name) != path  # never overwrites


def test_corrupt_and_foreign_runs(tmp_path):
    model = build_model("small", 10)
    config = {"data": "synthetic", "model": "small", "num_classes": 10, "mean": [0.5] * 3, "std": [0.25] * 3}
    path = save_run(tmp_path, config, model)
    (path / "model.pt").write_bytes(b"garbage")
    with pytest.raises(MesaError, match="corrupt"):
        load_run(path)
    (path / "config.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(MesaError, match="not a MESA Lab run"):
        load_run(path)
    (path / "config.json").write_text("{")
    with pytest.raises(MesaError, match="corrupt"):
        load_run(path)
    other = save_run(tmp_path, {**config, "num_classes": 5}, model)
    with pytest.raises(MesaError, match="do not fit"):
        load_run(other)
