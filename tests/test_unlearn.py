"""Unlearning by gradient ascent on stamped images: with the planted trigger as the sampler it must
close the backdoor on the suite's backdoored small model while clean accuracy holds."""
import pytest
import torch

from mesa.errors import MesaError
from mesa.method.metrics import evaluate
from mesa.method.poison import fixed_sampler
from mesa.method.unlearn import UnlearnConfig, unlearn


@pytest.mark.parametrize("field,value", [("epochs", 0), ("ratio", 0), ("ratio", 1.5), ("lr", 0), ("cap", 0),
                                         ("clean_margin", -1), ("smoothing", 1), ("precision", "fp8"),
                                         ("location", "fixed:a")])
def test_config_refuses_bad_values(field, value):
    with pytest.raises(MesaError):
        UnlearnConfig(**{field: value})


@pytest.fixture(scope="module")
def backdoored(backdoored_synthetic):
    from mesa.lab.storage.workspace import open_run

    return open_run(backdoored_synthetic["run"], "cpu")


def test_too_few_images_is_one_clear_error(backdoored):
    ws = backdoored
    x, y = ws.modeling
    with pytest.raises(MesaError, match="at least 128 images"):
        unlearn(ws.run.model, x[:10], y[:10], fixed_sampler(ws.run.trigger), ws.run.target, UnlearnConfig())


def test_unlearning_the_planted_trigger_closes_the_backdoor(backdoored):
    ws = backdoored
    model, trigger, target = ws.run.model, ws.run.trigger, ws.run.target
    held_x, held_y = ws.held_out
    before = evaluate(model, held_x, held_y, trigger, target)
    weights = [p.clone() for p in model.parameters()]
    cfg = UnlearnConfig(epochs=3, lr=1e-3, precision="fp32")
    unlearned, history = unlearn(model, *ws.modeling, fixed_sampler(trigger), target, cfg,
                                 evaluate=lambda m: evaluate(m, held_x, held_y, trigger, target, intervals=False))
    after = evaluate(unlearned, held_x, held_y, trigger, target)
    assert before["asr"] >= 0.9
    # 0.15: the bar every defense of the lab meets on this data (the ensemble's test); measured ~0.0x
    assert after["asr"] <= 0.15, history
    # 360 non-target held-out images: a Wilson upper bound under 0.2 rules out a lucky draw
    assert after["asr_ci"][1] <= 0.2
    # ascent on triggers must not cost the task: within 3 points (12 of 400 images)
    assert after["clean_acc"] >= before["clean_acc"] - 0.03, history
    assert [r["epoch"] for r in history] == [1, 2, 3] and {"clean_loss", "ascent_share", "asr"} <= set(history[0])
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))  # a copy was unlearned
