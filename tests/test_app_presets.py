"""Presets (mesa/lab/pipeline/presets.py): the built-in ones are valid, export/import round-trips, and every kind
of bad file is refused with a message naming the fault."""
import json

import pytest

from mesa.lab.pipeline import presets
from mesa.errors import MesaError


def test_builtin_presets_are_valid_and_named():
    found = presets.builtin()
    assert {"CPU classroom demo", "paper: ResNet-18 CIFAR-10"} <= set(found)
    demo = found["CPU classroom demo"]
    assert presets.attack_config(demo).data == "synthetic"
    assert presets.search_config(demo).betas == [0.5, 0.8, 0.9]
    assert [c.method for c in presets.defense_configs(found["paper: ResNet-18 CIFAR-10"])][:2] == ["mesa:0.9", "ensemble"]


def test_export_then_import_round_trips():
    demo = presets.builtin()["CPU classroom demo"]
    assert presets.parse(presets.dump(demo)) == demo


@pytest.mark.parametrize("text, message", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"attack": {"epochz": 3}}', "unknown key(s) epochz"),
    ('{"attack": {"epochs": "three"}}', "attack.epochs must be a whole number"),
    ('{"search": {"betas": [1.5]}}', "must be within (0, 1), got 1.5"),
    ('{"defense": {"methods": ["magic"]}}', "unknown defense"),
    ('{"defense": {"methods": []}}', "defense.methods must be a list of 1 to 16 entries"),
    ('{"attack": []}', "must be an object"),
])
def test_bad_presets_are_refused_with_a_reason(text, message):
    with pytest.raises(MesaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        presets.parse(text)


def test_builtin_names_a_broken_file(tmp_path):
    (tmp_path / "broken.json").write_text(json.dumps({"attack": {"model": "small", "bogus": 1}}))
    with pytest.raises(MesaError, match="broken.json"):
        presets.builtin(tmp_path)
