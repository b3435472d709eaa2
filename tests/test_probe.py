"""The probe (one trigger on the run's model and every kept defended model) and the census job, on
hand-made models whose answers are known exactly, and on a saved run with a saved defense."""
import pytest
import torch

from mesa.lab.storage import artifacts
from mesa.lab.jobs import tasks
from mesa.lab.pipeline import stages
from mesa.method.census import CensusConfig
from mesa.data import ImageData
from mesa.errors import MesaError
from mesa.models import build_model
from mesa.lab.pipeline.probe import BACKDOORED, Probe, ask, kept_defenses, open_probe
from mesa.lab.pipeline.projection import pca_projector
from mesa.lab.storage.runs import save_run
from mesa.method.triggers import binary_trigger
from tests.test_census import WhiteCounter


def grey_probe(n=12):
    images = torch.full((n, 3, 16, 16), 0.5)
    labels = 1 + torch.arange(n) % 9
    locations = torch.randint(0, 14, (n, 2), generator=torch.Generator().manual_seed(0))
    models = {BACKDOORED: WhiteCounter(need=7), "ensemble": WhiteCounter(need=10)}  # the defense never fires
    return Probe(models, images, labels, locations, 0, [str(c) for c in range(10)], {})


def test_ask_measures_each_model_on_the_same_stamped_images():
    probe = grey_probe()
    answer = ask(probe, binary_trigger(511), examples=4)
    assert answer.asr == {BACKDOORED: 1.0, "ensemble": 0.0}
    assert answer.examples.shape == (4, 3, 16, 16) and answer.labels == probe.labels[:4].tolist()
    assert answer.predictions == {BACKDOORED: [0] * 4, "ensemble": [1] * 4}
    assert ask(probe, binary_trigger(0)).asr[BACKDOORED] == 0.0  # 0 white cells
    assert ask(probe, binary_trigger(0b111111100)).asr[BACKDOORED] == 1.0  # exactly 7
    # the trigger sits where the probe's places say, the same for every call
    first, again = ask(probe, binary_trigger(256)), ask(probe, binary_trigger(256))
    assert torch.equal(first.examples, again.examples)
    row, col = probe.locations[0].tolist()
    assert first.examples[0, :, row, col].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(MesaError, match="3 x k x k"):
        ask(probe, torch.ones(3, 3))


def fake_run(tmp_path):
    """An untrained small model saved as a run, with an ensemble defense that kept its model and a
    pixel-sgd one saved before copies were kept (none); the data are 40 random 16x16 test images."""
    g = torch.Generator().manual_seed(0)
    data = ImageData("fake", [str(c) for c in range(10)], torch.zeros(10, 3, 16, 16, dtype=torch.uint8),
                     torch.arange(10), torch.randint(0, 256, (40, 3, 16, 16), generator=g, dtype=torch.uint8),
                     torch.arange(40) % 10, (0.5,) * 3, (0.25,) * 3)
    model = build_model("small", 10, data.mean, data.std)
    config = {"data": "fake", "model": "small", "num_classes": 10, "classes": data.classes, "mean": data.mean,
              "std": data.std, "trigger": "binary:170", "target": 0}
    path = save_run(tmp_path / "runs", config, model, binary_trigger(170))
    for method, kept in (("ensemble", model), ("pixel-sgd", None)):
        artifacts.save_defense(path, {"method": method}, kept)
    return path, data


def test_open_probe_loads_every_kept_defense_and_images_outside_the_target(tmp_path):
    path, data = fake_run(tmp_path)
    assert kept_defenses(path) == ["ensemble"]
    probe = open_probe(path, data, images=5)
    assert list(probe.models) == [BACKDOORED, "ensemble"] and set(probe.no_trigger) == {BACKDOORED, "ensemble"}
    assert len(probe.images) == 5 and (probe.labels != 0).all() and probe.images.max() <= 1
    answer = ask(probe, binary_trigger(170))
    assert set(answer.asr) == {BACKDOORED, "ensemble"}
    assert answer.asr[BACKDOORED] == answer.asr["ensemble"]  # the same weights answer the same


def test_census_job_takes_the_missing_censuses(tmp_path, monkeypatch):
    path, data = fake_run(tmp_path)
    monkeypatch.setattr(tasks, "open_cached", lambda p: stages.open_run(p, "cpu", data))
    events = []
    result = tasks.census_work(path, CensusConfig(images=4))(events.append, lambda: False)
    assert [c["tag"] for c in result["censuses"]] == ["before", "defense-ensemble"]
    assert artifacts.list_censuses(path) == ["before", "defense-ensemble"]
    assert events[-1].step == events[-1].total == 2
    again = tasks.census_work(path, CensusConfig(images=4))(events.append, lambda: False)
    assert [c["tag"] for c in again["censuses"]] == ["before"]  # the saved one is reused, nothing redone


def test_pca_projector_places_new_triggers_on_the_fitted_map():
    reference = torch.stack([binary_trigger(n) for n in (0, 7, 170, 511)])
    project = pca_projector(reference)
    xy = project(reference)
    assert xy.shape == (4, 2)
    assert project(reference[2:3]) == pytest.approx(xy[2:3])


def test_a_per_trigger_defense_keeps_each_copy_and_the_probe_asks_each(tmp_path):
    """pixel-sgd's copies (one per baseline restart) are kept as pixel-sgd-1, -2, checked against the
    defense's JSON; the Probe asks each, and a copy's file the JSON does not name is not loaded."""
    path, data = fake_run(tmp_path)
    copies = [build_model("small", 10, data.mean, data.std) for _ in range(2)]
    artifacts.save_defense(path, {"method": "pixel-sgd"}, None, (), copies)
    assert kept_defenses(path) == ["ensemble", "pixel-sgd-1", "pixel-sgd-2"]
    probe = open_probe(path, data, images=5)
    assert list(probe.models) == [BACKDOORED, "ensemble", "pixel-sgd-1", "pixel-sgd-2"]
    assert set(ask(probe, binary_trigger(170)).asr) == set(probe.models)
    artifacts.save_defense(path, {"method": "pixel-sgd"}, None, (), copies[:1])  # fewer restarts the next time
    assert kept_defenses(path) == ["ensemble", "pixel-sgd-1"]
