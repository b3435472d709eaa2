"""Neural Cleanse: the MAD arithmetic by hand, the reference's cost schedule on a toy, and detection
of the attacked class on the suite's backdoored small model."""
import math

import pytest
import torch

from mesa.errors import MesaError
from mesa.method.anomaly import anomaly_indices, flagged
from mesa.method.neural_cleanse import CostSchedule, NeuralCleanseConfig, apply_trigger, neural_cleanse


def test_anomaly_index_against_hand_computed_values():
    norms = [10, 50, 52, 48, 55, 47, 51, 49, 53, 46]
    # sorted: 10 46 47 48 49 | 50 51 52 53 55 -> median 49.5; deviations sorted 0.5 0.5 1.5 1.5 2.5 | 2.5 ...
    # -> MAD 2.5, consistent MAD 1.4826 * 2.5 = 3.7065
    indices, median, mad = anomaly_indices(norms)
    assert median == 49.5 and mad == pytest.approx(3.7065)
    assert indices[0] == pytest.approx(39.5 / 3.7065)  # 10.657
    assert indices[4] == pytest.approx(5.5 / 3.7065)  # 1.484: above the median, and under 2
    assert flagged(norms) == [0]


def test_only_small_norms_are_flagged_most_anomalous_first():
    assert flagged([50, 51, 49, 50, 52, 48, 200]) == []  # a large mask is no backdoor
    assert flagged([50, 51, 49, 50, 52, 48, 5, 20]) == [6, 7]
    indices, median, mad = anomaly_indices([3, 7, 7, 7, 7])  # zero MAD: every other norm is infinitely far
    assert (median, mad) == (7, 0) and indices == [math.inf, 0, 0, 0, 0]
    assert flagged([3, 7, 7, 7, 7]) == [0]


def test_cost_schedule_moves_as_the_reference():
    s = CostSchedule(init_cost=1e-3, up=2.0, down=2.0 ** 1.5, patience=2, threshold=0.99, stop_threshold=0.99,
                     stop_patience=3)
    assert s.update(1.0, 100) == (True, False) and s.cost == 0  # fired once: the cost is still 0
    assert s.update(1.0, 90) == (True, False) and s.cost == 1e-3  # fired `patience` times: set to init
    assert s.update(1.0, 80) == (True, False) and s.cost == pytest.approx(2e-3)  # up by the multiplier
    assert s.update(0.5, 10) == (False, False)  # missed: a small mask that does not fire is not kept
    assert s.update(0.98, 10) == (False, False) and s.cost == pytest.approx(2e-3 / 2 ** 1.5)  # down by mult^1.5
    assert s.best == 80 and s.went_up and s.went_down
    assert s.update(0.5, 10) == (False, True)  # moved both ways, best stale for 3 steps: stop


def test_cost_schedule_keeps_going_up_while_the_trigger_fires():
    s = CostSchedule(1e-3, 1.5, 1.5 ** 1.5, patience=1, threshold=0.99, stop_threshold=0.99, stop_patience=5)
    costs = [(s.update(1.0, 50 - i), s.cost)[1] for i in range(5)]
    assert costs == pytest.approx([1e-3 * 1.5, 1e-3 * 1.5 ** 2, 1e-3 * 1.5 ** 3, 1e-3 * 1.5 ** 4, 1e-3 * 1.5 ** 5])


def test_apply_trigger_blends_by_the_mask():
    x = torch.rand(4, 3, 8, 8)
    pattern = torch.rand(3, 8, 8)
    mask = torch.zeros(1, 8, 8)
    assert torch.equal(apply_trigger(x, mask, pattern), x)
    mask[:, 2:4, 5:7] = 1
    out = apply_trigger(x, mask, pattern)
    assert torch.equal(out[:, :, 2:4, 5:7], pattern[:, 2:4, 5:7].expand(4, -1, -1, -1))
    assert torch.equal(out[:, :, :2], x[:, :, :2])
    half = apply_trigger(x, torch.full((1, 8, 8), 0.5), pattern)
    assert torch.allclose(half, (x + pattern) / 2)


@pytest.mark.parametrize("field,value", [("steps", 0), ("lr", 0), ("cost_multiplier", 1.0), ("attack_threshold", 1.5),
                                         ("patience", 0), ("init_cost", -1)])
def test_config_refuses_bad_values(field, value):
    with pytest.raises(MesaError):
        NeuralCleanseConfig(**{field: value})


@pytest.fixture(scope="module")
def backdoored(backdoored_synthetic):
    from mesa.lab.storage.workspace import open_run

    return open_run(backdoored_synthetic["run"], "cpu")


def test_ranks_the_attacked_class_first(backdoored):
    """NC's reversed mask for the attacked class is the smallest (7-10 pixels, the planted 3x3 is 9;
    the clean classes need 14-40). Its MAD anomaly index on this data is NOT reliably over 2: measured
    1.3 on one model the suite's fixture trained and 2.1-2.7 (flagged) on another trained by the same
    command (training is not bit-reproducible), since the clean classes' norms spread widely. So the
    test asserts the ranking, that the reversed trigger fires, and that NC never flags a wrong class."""
    ws = backdoored
    model, target = ws.run.model, ws.run.target
    before = [p.clone() for p in model.parameters()]
    result = neural_cleanse(model, *ws.modeling, ws.run.config["num_classes"], NeuralCleanseConfig(seed=0),
                            *ws.held_out)
    norms = sorted(c.l1_norm for c in result.per_class)
    assert result.smallest == target, result.summary()
    assert result.per_class[target].l1_norm <= 0.8 * norms[1]  # clearly apart from the easiest clean class
    assert result.suspect in (target, None)
    assert result.per_class[target].anomaly_index == max(c.anomaly_index for c in result.per_class
                                                         if c.l1_norm <= result.median)
    assert result.per_class[target].asr >= 0.85  # the reversed trigger does fire the backdoor
    assert result.per_class[target].asr_images == int((ws.held_out[1] != target).sum())
    mask, pattern = result.trigger(target)
    assert mask.shape == (1, 32, 32) and pattern.shape == (3, 32, 32) and 0 <= mask.min() <= mask.max() <= 1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the model is left as it was
    assert all(p.requires_grad for p in model.parameters())
