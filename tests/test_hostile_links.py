"""Crafted links, hostile presets and runs with a broken config.json (issue 24, item 6): the presets'
schema refuses each bad value in one line, before it reaches a config, a widget or a path; pages
opened with them draw, under one warning, instead of a traceback."""
import json
import time
from dataclasses import fields
from pathlib import Path

import pytest

from mesa.errors import MesaError
from mesa.lab.pipeline import preset_schema
from mesa.lab.pipeline import presets
from mesa.lab.storage.runs import runs_root, save_run
from mesa.method.attack import AttackConfig
from mesa.method.baseline import BaselineConfig
from mesa.method.census import CensusConfig
from mesa.method.defense import DefenseConfig
from mesa.method.search import SearchConfig
from mesa.models import build_model

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
ROOT = Path(__file__).resolve().parent.parent
DEEP_LIST = "[" * 3000 + "]" * 3000
DEEP_OBJECT = '{"a":' * 3000 + "1" + "}" * 3000


@pytest.mark.parametrize("preset, message", [
    ({"attack": {"target": "0"}}, 'attack.target must be a whole number, got "0"'),
    ({"attack": {"target": 10**6}}, "attack.target must be within 0..999"),
    ({"attack": {"target": 10}}, "attack.target 10 is out of range: synthetic has classes 0..9"),
    ({"attack": {"data": "cifar100", "target": 100}}, "cifar100 has classes 0..99"),
    ({"attack": {"lr": "fast"}}, 'attack.lr must be a finite number, got "fast"'),
    ({"attack": {"lr": 0}}, "attack.lr must be within (0, 10]"),
    ({"attack": {"batch_size": -1}}, "attack.batch_size must be within 1..65536, got -1"),
    ({"attack": {"epochs": 10**6}}, "attack.epochs must be within 1..500"),
    ({"attack": {"epochs": True}}, "attack.epochs must be a whole number, got true"),
    ({"attack": {"out": "/etc"}}, 'attack.out must name a folder inside the runs folder'),
    ({"attack": {"init": "../../x"}}, 'attack.init must name a folder inside the runs folder'),
    ({"attack": {"model": "evil"}}, "attack.model must be one of small"),
    ({"attack": {"data": "http://x"}}, "attack.data must be synthetic[100][:N]"),
    ({"search": {"alpha": float("inf")}}, "search.alpha must be a finite number, got Infinity"),
    ({"search": {"betas": [0.5, 1]}}, "search.betas[1] must be within (0, 1), got 1"),
    ({"defense": {"augment": "yes"}}, 'defense.augment must be true or false, got "yes"'),
    ({"census": {"samples": 99_999_999}}, "census.samples must be within 1..100000"),
    ({"attack": {}, "evil": 1, "worse": 2}, "preset has unknown key(s) evil, worse; allowed: name, description"),
    ({"search": {"hack": 1}}, "search has unknown key(s) hack"),
    ({"description": "x" * 2_001}, "preset description must be at most 2,000 characters, got 2,001"),
])
def test_each_bad_value_is_refused_in_one_line_naming_it(preset, message):
    with pytest.raises(MesaError) as e:
        presets.parse(json.dumps(preset))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_good_preset_is_accepted_and_its_places_are_inside_the_runs_folder():
    text = json.dumps({"name": "mine", "description": "a class's setting",
                       "attack": {"data": "cifar100", "target": 99, "lr": 0.05, "batch_size": 64, "init": "base-run",
                                  "out": "class-a"},
                       "search": {"alpha": 0.2, "betas": [0.5, 0.9]}, "census": {"location": [0, 0]}})
    preset = presets.parse(text)
    cfg = presets.attack_config(preset)
    assert cfg.init == str(runs_root() / "base-run") and cfg.out == str(runs_root() / "class-a")
    assert presets.parse(presets.dump(preset)) == preset


@pytest.mark.parametrize("text", [DEEP_LIST, DEEP_OBJECT, '{"attack": ' + DEEP_LIST + "}"])
def test_deep_nesting_is_refused_before_parsing(text):
    with pytest.raises(MesaError, match="nested 300[01] levels deep; at most 8"):
        presets.parse(text)


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert presets.parse(json.dumps({"description": "[[[[[[[[[[{{{{{{{{{{ \" ]]"}))["description"].startswith("[[[")


def test_a_50_mb_description_is_refused_quickly():
    text = '{"description": "' + "x" * 50_000_000 + '"}'
    start = time.perf_counter()
    with pytest.raises(MesaError, match="too large .* at most 64,000"):
        presets.parse(text)
    assert time.perf_counter() - start < 0.5


def test_the_schema_covers_every_config_field():
    """A field added to a config must get its type and range here, or every preset using it is refused."""
    for section, cls in {"attack": AttackConfig, "search": SearchConfig, "baseline": BaselineConfig,
                         "census": CensusConfig}.items():
        assert set(preset_schema.SECTIONS[section]) == {f.name for f in fields(cls)}, section
    assert set(preset_schema.SECTIONS["defense"]) == {f.name for f in fields(DefenseConfig)} - {"method"} | {"methods"}


# The app, headless.

def make_run(name: str, config: dict | None = None) -> Path:
    """An untrained small run in $MESA_RUNS (no training: the pages only need it to open), its
    config.json replaced by `config` when given."""
    good = {"data": "synthetic", "model": "small", "num_classes": 10, "classes": [str(c) for c in range(10)],
            "mean": [0.5] * 3, "std": [0.25] * 3, "target": 0, "trigger": "binary:170"}
    path = save_run(None, good, build_model("small", 10, good["mean"], good["std"]), name=name)
    if config is not None:
        (path / "config.json").write_text(json.dumps({"kind": "mesa-lab-run", "version": 1, **config}))
    return path


def opened(page: str, **query):
    at = streamlit_testing.AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(**query)
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.title, f"{page} drew no title"
    return at


def warnings_of(at) -> list[str]:
    return [w.value for w in at.warning]


MISSING = {"data": "synthetic", "model": "small"}
WRONG_TYPES = {"data": "synthetic", "model": "small", "num_classes": "ten", "classes": "abc", "mean": 0, "std": 0}


@pytest.mark.parametrize("page, config", [("overview", MISSING), ("model", WRONG_TYPES), ("mesa_search", MISSING),
                                          ("gallery", WRONG_TYPES)])
def test_a_link_to_a_run_with_a_broken_config_draws_the_page_under_one_warning(page, config):
    make_run("good-run")
    time.sleep(0.05)  # the broken run is the newest
    make_run("broken-run", config)
    at = opened(page, run="broken-run")
    assert at.sidebar.selectbox[0].value.endswith("broken-run")
    assert len([w for w in warnings_of(at) if w.startswith("Run `broken-run` cannot be opened: ")]) == 1
    assert not at.error, [e.value for e in at.error]


def test_without_a_link_the_newest_run_that_opens_is_shown():
    make_run("good-run")
    time.sleep(0.05)
    make_run("broken-run", MISSING)
    at = opened("model")
    assert at.sidebar.selectbox[0].value.endswith("good-run") and not warnings_of(at)


@pytest.mark.parametrize("query, warning", [
    ({"config": '{"attack":{"target":"0"}}'}, 'attack.target must be a whole number, got "0"'),
    ({"config": '{"attack":{"out":"/etc"}}'}, "attack.out must name a folder inside the runs folder"),
    ({"config": DEEP_OBJECT}, "it is nested 3000 levels deep"),
    ({"config": "[" * 100_000}, "it is too large"),
])
def test_a_crafted_config_link_is_one_warning_and_the_defaults_stay(query, warning):
    at = opened("model", **query)
    assert [w for w in warnings_of(at) if "configuration is not valid" in w and warning in w] == warnings_of(at)
    assert len(warnings_of(at)) == 1
    assert at.session_state["preset"] == presets.builtin()["CPU classroom demo"]
    assert {w.label: w.value for w in at.number_input}["Target class"] == 0


def test_a_deep_list_choice_in_a_link_falls_back_to_its_default():
    make_run("good-run")
    at = opened("mesa_search", betas=DEEP_LIST, tab="MESA search")
    assert at.multiselect[0].value == [0.5, 0.8, 0.9]


@pytest.mark.parametrize("content, message", [
    (b'{"attack": {"target": 1000000}}', "attack.target must be within 0..999"),
    (DEEP_LIST.encode(), "nested 3000 levels deep"),
    (b'{"description": "' + b"x" * 100_000 + b'"}', "too large"),
])
def test_a_bad_preset_import_is_one_error_box(content, message):
    at = opened("presets")
    at.file_uploader[0].set_value(("hostile.json", content, "application/json")).run()
    assert not at.exception, [e.message for e in at.exception]
    assert [e.value for e in at.error] == [e.value for e in at.error if e.value.startswith("Cannot import hostile.json")]
    assert len(at.error) == 1 and message in at.error[0].value
    assert at.session_state["preset"] == presets.builtin()["CPU classroom demo"]
