import math

import numpy as np
import pytest
import torch
from torch import nn

from mesa.method.defense import DefenseConfig, parse_method
from mesa.errors import MesaError
from mesa.method.generator import StatisticsNetwork, TriggerGenerator, sample_noise
from mesa.method.mine import MineTrainer, mine_lower_bound
from mesa.method.search import SearchConfig, capped_target_probability, per_trigger_asr
from tests.test_metrics_models import WhitePatchDetector, _images


class PairStatistics(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, z, x):
        return self.net(torch.cat([z, x], 1)).squeeze(1)


def test_mine_estimates_mutual_information_of_correlated_gaussians():
    torch.manual_seed(0)
    rho = 0.9
    true_mi = -0.5 * math.log(1 - rho ** 2)  # 0.830 nats
    stats = PairStatistics()
    trainer = MineTrainer(stats, torch.optim.Adam(stats.parameters(), lr=1e-3), rate=0.01)

    def batch(n):
        z = torch.randn(n, 1)
        x = rho * z + math.sqrt(1 - rho ** 2) * torch.randn(n, 1)
        return z, torch.randn(n, 1), x

    for _ in range(800):
        trainer.step(*batch(256))
    with torch.no_grad():
        estimate = mine_lower_bound(stats, *batch(20000)).item()
    assert abs(estimate - true_mi) < 0.15, estimate
    with torch.no_grad():  # independent variables: the bound stays near zero
        z, zm, _ = batch(20000)
        assert mine_lower_bound(stats, z, zm, torch.randn(20000, 1)).item() < 0.1


def test_generator_and_statistics_shapes_and_ranges():
    gen = TriggerGenerator(k=3, noise_dim=64, hidden=32)
    z = sample_noise(16, 64, "cpu", torch.Generator().manual_seed(0))
    assert z.min() >= 0 and z.max() <= 1
    triggers = gen(z)
    assert triggers.shape == (16, 3, 3, 3) and triggers.min() >= 0 and triggers.max() <= 1
    assert StatisticsNetwork(3, 64, 32)(z, triggers).shape == (16,)
    assert sample_noise(8, 64, "cpu", kind="gaussian").min() < 0
    with pytest.raises(ValueError):
        TriggerGenerator(noise_dim=63)


def test_hinge_caps_at_beta():
    p = torch.tensor([0.95, 0.3], requires_grad=True)
    value = capped_target_probability(p, 0.9)
    value.backward()
    assert value.item() == pytest.approx(0.6)
    assert p.grad.tolist() == [0.0, 0.5]  # a trigger above beta gets no push


def test_per_trigger_asr_on_a_hand_made_model():
    labels = torch.tensor([0, 1, 2, 3] * 8)
    images = (_images(labels) * 255).round().to(torch.uint8)
    triggers = torch.stack([torch.ones(3, 3, 3), torch.zeros(3, 3, 3)])
    asr = per_trigger_asr(WhitePatchDetector(target=1), images, labels, triggers, target=1)
    assert asr.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("bad", ["mesa:x", "magic", "mesa:"])
def test_bad_defense_methods(bad):
    with pytest.raises(MesaError):
        parse_method(bad)


def test_config_validation():
    assert parse_method("mesa:0.9") == ("mesa", 0.9)
    with pytest.raises(MesaError):
        SearchConfig(betas=[1.5])
    with pytest.raises(MesaError):
        DefenseConfig(poison_ratio=-0.1)


def test_projections_of_trigger_space():
    from mesa.lab.pipeline.projection import project_triggers

    triggers = torch.rand(40, 3, 3, 3)
    for method in ("PCA", "t-SNE"):
        xy = project_triggers(triggers, method)
        assert xy.shape == (40, 2) and np.isfinite(xy).all()
    assert project_triggers(triggers[:3], "UMAP").shape == (3, 2)  # too few points: PCA
    with pytest.raises(MesaError, match="unknown projection"):
        project_triggers(triggers, "LDA")


def test_a_server_imports_the_projection_in_the_background():
    import sys

    from mesa.lab.pipeline.projection import import_in_background

    import_in_background().join(60)
    assert "sklearn.decomposition" in sys.modules
