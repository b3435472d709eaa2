"""The strong model (fastnet), training at the device's native precision, and the shipped clean base."""
from pathlib import Path

import pytest
import torch

from mesa.data import load_data
from mesa.device import bf16_is_native, uses_bf16
from mesa.errors import MesaError
from mesa.lab.storage.runs import load_run
from mesa.method.attack import AttackConfig
from mesa.lab.pipeline.attack_stage import run_attack
from mesa.models import build_model

BASE = Path(__file__).resolve().parents[1] / "assets" / "bases" / "cifar10-fastnet"


def binomial_interval(p: float, n: int) -> float:
    """Half-width of a 95% normal interval of a proportion measured on n images."""
    return 1.96 * (max(p * (1 - p), 0.01) / n) ** 0.5


def test_whitening_layer_decorrelates_patches():
    """After init_from_data, the first half of the whitening filters gives unit-variance, uncorrelated
    responses on the images it was fitted to (the eigenvectors of their 2x2 patch covariance)."""
    torch.manual_seed(0)
    base = torch.rand(500, 1, 32, 32)
    images = (torch.cat([base, 0.5 * base + 0.5 * torch.rand(500, 1, 32, 32), torch.rand(500, 1, 32, 32)], 1) * 255)
    model = build_model("fastnet", 10)
    model.init_from_data(images.to(torch.uint8))
    with torch.no_grad():
        x = model.normalize(images.to(torch.uint8).float() / 255)
        out = torch.nn.functional.conv2d(x, model.body[0].weight[:12])
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12)
    cov = torch.cov(flat.T)
    assert torch.allclose(cov.diagonal(), torch.ones(12), atol=0.2)
    assert (cov - torch.diag(cov.diagonal())).abs().max() < 0.1


def test_fastnet_learns_and_plants_a_backdoor_on_embedded_data(tmp_path):
    """From scratch with its own recipe (smaller batches for the small data set), fastnet learns the
    embedded classes and the planted trigger."""
    cfg = AttackConfig(data="synthetic:2000", model="fastnet", epochs=6, poison_ratio=0.05, batch_size=100, lr=0.13,
                       out=str(tmp_path))
    path, metrics = run_attack(cfg)
    assert metrics["clean_acc"] > 0.6, metrics
    assert metrics["asr"] > 0.8, metrics
    assert load_run(path).config["train"]["schedule"] == "triangle"


def test_bf16_and_fp32_agree_within_noise(backdoored_synthetic):
    """A backdoored model measured at both precisions: clean accuracy and ASR differ by less than the
    binomial noise of their measurement; one training step's gradients point the same way."""
    from mesa.data import cached_data
    from mesa.method.metrics import evaluate

    run = load_run(backdoored_synthetic["run"])
    data = cached_data(run.config["data"])
    n = len(data.test_labels)
    measured = {}
    for precision in ("fp32", "bf16"):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            measured[precision] = evaluate(run.model, data.test_images, data.test_labels, run.trigger, run.target)
    for key in ("clean_acc", "asr"):
        a, b = measured["fp32"][key], measured["bf16"][key]
        assert abs(a - b) <= binomial_interval((a + b) / 2, n), (key, measured)
    x, y = data.train_images[:256].float() / 255, data.train_labels[:256]
    grads = {}
    for precision in ("fp32", "bf16"):
        run.model.train().zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = run.model(x)
        torch.nn.functional.cross_entropy(out.float(), y).backward()
        grads[precision] = torch.cat([p.grad.flatten() for p in run.model.parameters()])
    assert torch.nn.functional.cosine_similarity(grads["fp32"], grads["bf16"], dim=0) > 0.95


def test_precision_is_detected_once_and_can_be_forced():
    cpu = torch.device("cpu")
    assert uses_bf16("auto", cpu) == bf16_is_native(cpu)
    assert uses_bf16("bf16", cpu) and not uses_bf16("fp32", cpu)
    with pytest.raises(MesaError, match="unknown precision"):
        uses_bf16("fp8", cpu)


@pytest.mark.skipif(not BASE.is_dir(), reason="the shipped base is made by bench/train_speed.py --ship assets/bases")
def test_shipped_clean_base_loads_and_records_its_accuracy():
    run = load_run(BASE)
    assert run.config["model"] == "fastnet" and run.config["data"] == "cifar10" and run.trigger is None
    low, high = run.metrics["clean_acc_ci"]  # 0.899 on the JPEG copy (docs/RESULTS.md), short of the 0.92 aimed at
    assert 0.85 <= low <= run.metrics["clean_acc"] <= high
    assert "bench/train_speed.py" in run.config["made_by"]
    assert BASE.joinpath("model.pt").stat().st_size < 8_000_000  # half precision
    with torch.no_grad():
        assert run.model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_init_from_the_base_needs_the_same_classes(tmp_path):
    """A base fine-tunes only on data with its classes (cifar10 or a folder copy of it)."""
    clean, _ = run_attack(AttackConfig(data="synthetic:1000", model="small", epochs=1, poison_ratio=0.0,
                                       out=str(tmp_path)))
    data = load_data("synthetic100:1000")
    with pytest.raises(MesaError, match="classes"):
        run_attack(AttackConfig(data="synthetic100:1000", model="small", init=str(clean), epochs=1,
                                out=str(tmp_path)), data=data)


def test_eval_measures_a_run_on_another_copy_of_its_data(backdoored_synthetic, capsys):
    """`eval --data SPEC`: the shipped CIFAR-10 base or run measured on a user's own copy; a data set
    with other classes is refused in one line."""
    import json

    from mesa.lab.cli.main import main

    run = backdoored_synthetic["run"]
    assert main(["eval", run, "--data", "synthetic:2000", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert measured["clean_acc"] > 0.8 and measured["asr"] > 0.8
    assert main(["eval", run, "--data", "synthetic100:1000", "--json"]) == 2
    assert "classes" in capsys.readouterr().err
