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


def test_a_pages_choices_keep_the_presets_other_settings():
    """The Model page's choices laid over a preset keep what the page does not show (the live demo's lr
    and training images); the shipped base is used only when asked, a preset's own base run stays."""
    live = presets.builtin()[presets.LIVE_DEMO]["attack"]
    chosen = {"data": "cifar10", "model": "small", "trigger": "binary:7", "target": 3, "poison_ratio": 0.1,
              "epochs": 2, "seed": 1}
    merged = presets.attack_with_choices(live, chosen, from_shipped_base=True)
    assert merged == {**chosen, "init": "shipped", "lr": 0.02, "train_images": 10000}
    assert "init" not in presets.attack_with_choices(live, chosen, from_shipped_base=False)
    own = presets.attack_with_choices({**live, "init": "my-base"}, chosen, from_shipped_base=False)
    assert own["init"] == "my-base" and presets.attack_config({"attack": merged}).init == "shipped"


def test_the_model_page_offers_the_shipped_base_and_shows_what_the_preset_keeps():
    from tests.test_app import ROOT, assert_clean, streamlit_testing

    at = streamlit_testing.AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["preset"] = presets.builtin()[presets.LIVE_DEMO]
    at.run()
    at.switch_page("pages/model.py").run()
    assert_clean(at)
    box = [c for c in at.checkbox if "shipped clean small base" in c.label]
    assert len(box) == 1 and box[0].value  # the live demo fine-tunes the shipped base
    assert any("lr 0.02" in c.value and "train_images 10000" in c.value for c in at.caption)
    at.selectbox(key=next(s.key for s in at.selectbox if s.label == "Data source")).set_value("synthetic").run()
    assert_clean(at)
    assert not [c for c in at.checkbox if "shipped clean" in c.label]  # no base ships for the embedded data
    at.selectbox(key=next(s.key for s in at.selectbox if s.label == "Data source")).set_value("folder").run()
    next(t for t in at.text_input if t.label.startswith("Image folder")).set_value("x" * 5000).run()
    next(b for b in at.button if b.label == "Train backdoored model").click().run()
    assert not at.exception  # a path past the preset's bound: one line, no job, the preset unchanged
    assert [e.value for e in at.error] == ["preset attack.data must be at most 1,000 characters, got 5,007"]
    assert at.session_state["preset"]["attack"]["data"] == "cifar10"
