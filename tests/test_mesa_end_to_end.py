"""The method end to end on the embedded data: attack -> MESA search -> defenses, through the CLI."""
import contextlib
import io
import json

import pytest

from mesa.lab.storage import artifacts
from mesa.lab.cli.main import main

from .conftest import fresh_copy


def _run(capsys, argv):
    assert main(argv + ["--json", "--quiet"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def searched_run(backdoored_synthetic, tmp_path_factory):
    """The suite's backdoored small model on synthetic (3 epochs), copied, with its MESA search
    (3 betas, 10 epochs: the samples' mean ASR measured 0.81 on 2 cores)."""
    attack = {**backdoored_synthetic, "run": fresh_copy(backdoored_synthetic["run"], tmp_path_factory.mktemp("runs"))}
    buffer = io.StringIO()  # module fixtures cannot use capsys
    with contextlib.redirect_stdout(buffer):
        assert main(["search", attack["run"], "--epochs", "10", "--samples", "64", "--json", "--quiet"]) == 0
        found = json.loads(buffer.getvalue().strip().splitlines()[-1])
    return attack, found


def test_mesa_samples_fire_the_backdoor(searched_run):
    attack, found = searched_run
    assert attack["asr"] >= 0.9
    by_beta = {b["beta"]: b for b in found["betas"]}
    assert sorted(by_beta) == [0.5, 0.8, 0.9]
    assert sum(b["mean_asr"] for b in found["betas"]) / 3 >= 0.75  # the floor (no trigger) is ~0.02
    saved = artifacts.load_search(attack["run"])
    assert saved["betas"][0.9]["samples"].shape == (64, 3, 3, 3)
    assert saved["betas"][0.9]["snapshots"].shape[0] == 10  # one snapshot per epoch
    assert saved["betas"][0.9]["curve"][-1]["mi"] > 0


def test_ensemble_defense_removes_the_backdoor_and_finetune_does_not(searched_run, capsys):
    attack, _ = searched_run
    census = ["--census-images", "64"]
    ensemble = _run(capsys, ["defend", attack["run"], "--method", "ensemble", "--epochs", "3"] + census)
    assert ensemble["before"]["asr"] >= 0.9
    assert ensemble["after"]["asr"] <= 0.15
    assert ensemble["after"]["clean_acc"] >= ensemble["before"]["clean_acc"] - 0.03
    control = _run(capsys, ["defend", attack["run"], "--method", "finetune", "--epochs", "3"] + census)
    assert control["after"]["asr"] >= 0.8  # plain fine-tuning leaves the backdoor in place
    assert set(artifacts.load_defenses(attack["run"])) == {"ensemble", "finetune"}
    # the census: the planted pattern is one of the open triggers before; the ensemble closes at
    # least nine in ten of them, plain fine-tuning does not
    before, after = ensemble["census"]["before"], ensemble["census"]["after"]
    assert before["original_asr"] >= 0.5 and before["original_rank"] <= before["open"]
    assert after["open"] <= before["open"] / 10 and ensemble["census"]["closure"] >= 0.9
    assert control["census"]["after"]["open"] >= before["open"] / 2


def test_census_command(searched_run, capsys):
    attack, _ = searched_run
    before = _run(capsys, ["census", attack["run"], "--images", "64"])
    assert {"family", "triggers", "open", "worst_asr", "original_asr"} <= set(before)
    assert before["family"] == "binary" and before["triggers"] == 512 and before["open"] >= 1
    saved = artifacts.load_census(attack["run"], "before")
    assert saved["census"].names[170] == "binary:170" and saved["census"].asr[170] >= 0.5  # the planted pattern
    colour = _run(capsys, ["census", attack["run"], "--family", "color", "--samples", "64", "--images", "32"])
    assert colour["family"] == "color" and colour["triggers"] == 64


@pytest.mark.parametrize("argv,match", [
    (["--family", "plaid"], "unknown census family"),
    (["--defense", "mesa:0.3"], "no defended model saved"),
    (["--samples", "0"], ">= 1"),
])
def test_census_errors(searched_run, capsys, argv, match):
    attack, _ = searched_run
    assert main(["census", attack["run"], "--images", "16"] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err


def test_baseline_and_pixel_sgd_defense(searched_run, capsys):
    attack, _ = searched_run
    base = _run(capsys, ["baseline", attack["run"], "--restarts", "2", "--steps", "60"])
    assert base["restarts"] == 2 and 0 <= base["mean_asr"] <= 1
    result = _run(capsys, ["defend", attack["run"], "--method", "pixel-sgd", "--epochs", "1", "--census-images", "32"])
    saved = artifacts.load_defenses(attack["run"])["pixel-sgd"]
    assert len(saved["restarts"]) == 2 and result["worst_asr"] == max(r["asr"] for r in saved["restarts"])
    # one census per restart; the defense's census is its worst restart (the most triggers left open)
    per_restart = saved["census"]["restarts"]
    assert len(per_restart) == 2 and result["census"]["after"]["open"] == max(r["after"]["open"] for r in per_restart)
    assert {"defense-pixel-sgd-1", "defense-pixel-sgd-2"} <= set(artifacts.list_censuses(attack["run"]))
    assert {"pixel-sgd-1", "pixel-sgd-2"} <= set(artifacts.kept_models(attack["run"]))  # each copy kept: the Probe asks it
    again = _run(capsys, ["census", attack["run"], "--defense", "pixel-sgd", "--images", "32"])
    assert again["open"] == result["census"]["after"]["open"]


def test_search_follows_the_trigger_size_and_defense_needs_its_beta(tmp_path, capsys):
    attack = _run(capsys, ["attack", "--data", "synthetic:2000", "--epochs", "1", "--trigger", "color:3:4",
                          "--out", str(tmp_path)])
    assert main(["defend", attack["run"], "--method", "ensemble"]) == 2
    assert "run `search` first" in capsys.readouterr().err
    _run(capsys, ["search", attack["run"], "--betas", "0.5", "--epochs", "1", "--samples", "8"])
    assert artifacts.load_search(attack["run"])["betas"][0.5]["samples"].shape == (8, 3, 4, 4)
    assert main(["defend", attack["run"], "--method", "mesa:0.9"]) == 2
    assert "no generator for beta=0.9" in capsys.readouterr().err


def test_detection_points_at_the_attacked_class(searched_run, capsys):
    attack, _ = searched_run
    result = _run(capsys, ["detect", attack["run"]])
    assert result["suspect"] == 0  # the backdoor's target
    scores = [c["mean_asr"] for c in result["per_class"]]
    assert len(scores) == 10 and scores[0] == max(scores)
    assert artifacts.load_detection(attack["run"])["suspect"] == 0
