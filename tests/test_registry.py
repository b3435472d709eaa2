"""One method, one file: a defense or an inversion method registered in a test (no other file touched)
shows in the CLI's choices, the sweep's plan and keys, the presets' schema, the Defense page's options
and the machine lock's heavy commands; a defense with its own run (not retraining) runs through `defend`."""
import pytest
import torch
from torch import nn

from mesa.errors import MesaError
from mesa.lab.cli.main import build_parser
from mesa.lab.pipeline import presets
from mesa.lab.pipeline.offers import defense_offers
from mesa.lab.sweep.case import defense_key, digest
from mesa.lab.sweep.plan import SweepConfig
from mesa.method import registry
from mesa.method.defense import Defended, DefenseConfig, DefenseInputs, defend
from mesa.method.poison import fixed_sampler
from mesa.method.retrain import retraining


def _toy_stamps(inputs, cfg, param):
    sampler = fixed_sampler(torch.ones(3, 3, 3))
    return lambda _: sampler


def _toy_run(entry, param, model, inputs, cfg, on_progress, should_stop, inspect):
    """Not retraining: the model as it is, measured (an unlearning defense would go here)."""
    return Defended(model, {"clean_acc": 0.5}, [{"epoch": 0}], inspections=[inspect(model, None)] if inspect else [])


@pytest.fixture
def toys():
    registry.register_inversion(registry.Inversion(
        "toy-inversion", "toy-search", DefenseConfig, lambda *a: None, gives="triggers", output="the toy's triggers",
        sweep_key=lambda s: {"seed": s.seed}, sweep_config=lambda k: (None, {}), help="a toy"))
    registry.register_defense(registry.Defense("toy", "a toy defense", retraining, uses="toy-inversion",
                                               stamps=_toy_stamps, default="toy"))
    registry.register_defense(registry.Defense("toy-unlearn", "a toy that is not retraining", _toy_run))
    yield
    for name in ("toy", "toy-unlearn", "toy-inversion"):
        registry.unregister(name)


def test_a_registered_defense_is_everywhere_methods_are_listed(toys, tmp_path, capsys):
    parser = build_parser()
    assert parser.parse_args(["defend", "run", "--method", "toy"]).method == "toy"
    with pytest.raises(SystemExit):
        parser.parse_args(["defend", "--help"])
    defend_help = " ".join(capsys.readouterr().out.split())
    assert "toy: a toy defense" in defend_help and "toy-unlearn" in defend_help
    with pytest.raises(MesaError, match="unknown defense 'magic'"):
        parser.parse_args(["defend", "run", "--method", "magic"])
    # the sweep: run by default, and keyed on the toy inversion's sweep key (a changed seed redoes it)
    cfg = SweepConfig(out=str(tmp_path))
    assert "toy" in cfg.defenses and "toy-unlearn" not in cfg.defenses
    made_from = {"toy-inversion": digest({"attack": "a", **registry.inversion("toy-inversion").sweep_key(cfg)})}
    assert defense_key(cfg, "toy", "a", made_from, None)["from"] == made_from["toy-inversion"]
    assert defense_key(cfg, "toy-unlearn", "a", made_from, None)["from"] is None
    # presets: the schema takes it, and the stage's CLI command takes the machine's turn
    preset = presets.validate({"defense": {"methods": ["toy", "toy-unlearn"], "epochs": 1}})
    assert [c.method for c in presets.defense_configs(preset)] == ["toy", "toy-unlearn"]
    assert "toy-search" in registry.heavy_commands()
    # the Defense page offers it, and says what it still needs
    methods, missing = defense_offers(tmp_path)
    assert {"toy", "toy-unlearn"} <= set(methods) and missing["toy"].startswith("needs the toy's triggers")
    assert "toy-unlearn" not in missing


def test_unregistered_defenses_are_refused_in_one_line(tmp_path):
    with pytest.raises(MesaError, match="unknown defense 'toy'"):
        SweepConfig(out=str(tmp_path), defenses=["toy"])
    with pytest.raises(MesaError, match="not a defense"):
        presets.validate({"defense": {"methods": ["toy"]}})


def test_a_defense_with_its_own_run_goes_through_defend(toys):
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    x, y = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8), torch.arange(16) % 4
    inputs = DefenseInputs(torch.ones(3, 3, 3), 0, (x, y), (x, y))
    seen = []
    result, kept = defend(model, inputs, DefenseConfig(method="toy-unlearn"),
                          inspect=lambda m, i: seen.append(i) or {"after": {"open": 0}})
    assert kept is model and seen == [None] and result.inspections == [{"after": {"open": 0}}]
    saved = result.to_dict()
    assert list(saved) == ["method", "config", "before", "after", "worst_asr", "history", "seconds"]
    assert saved["method"] == "toy-unlearn" and "asr" in saved["before"] and saved["worst_asr"] is None
    with pytest.raises(MesaError, match="toy defense needs the toy's triggers: run `toy-search` first"):
        defend(model, inputs, DefenseConfig(method="toy"))


def test_a_per_trigger_defense_saves_each_copy_as_before():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    x, y = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8), torch.arange(16) % 4
    inputs = DefenseInputs(torch.ones(3, 3, 3), 0, (x, y), (x, y), made=torch.rand(3, 3, 3, 3))
    cfg = DefenseConfig(method="pixel-sgd", epochs=1, batch_size=8, restarts=2, augment=False)
    result, kept = defend(model, inputs, cfg)
    saved = result.to_dict()
    assert kept is None and len(saved["restarts"]) == 2 and len(saved["histories"]) == 2
    assert list(saved) == ["method", "config", "before", "after", "worst_asr", "restarts", "history", "histories",
                           "seconds"]
    assert saved["worst_asr"] == max(r["asr"] for r in saved["restarts"])
