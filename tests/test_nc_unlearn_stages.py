"""Neural Cleanse and unlearning as registered methods, through the CLI, on a copy of the shipped
embedded run (fixed weights, so NC's verdict is reproducible): detection names the attacked class,
the reversed set is saved and drawn, and both defenses close the backdoor with the census taken.
Their names live in at most 3 files of the product (the design's "one method, one file")."""
import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mesa.lab.cli.main import main
from mesa.lab.storage import artifacts
from mesa.lab.storage.ready_runs import SHIPPED

ROOT = Path(__file__).resolve().parents[1]
RUN = SHIPPED / "ready-synthetic-small-binary170-t0"


def cli(*argv) -> dict:
    buffer = io.StringIO()  # module fixtures cannot use capsys
    with contextlib.redirect_stdout(buffer):
        assert main([*argv, "--json", "--quiet"]) == 0
    return json.loads(buffer.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    """The run copied, and `detect --method neural-cleanse`'s report on it."""
    run = str(shutil.copytree(RUN, tmp_path_factory.mktemp("nc") / RUN.name))
    return run, cli("detect", run, "--method", "neural-cleanse")


def test_detection_names_the_attacked_class(detected):
    run, report = detected
    rows = report["per_class"]
    assert [r["class"] for r in rows] == list(range(10))
    assert report["suspect"] == 0 and report["smallest"] == 0 and report["backdoor_detected"]
    assert rows[0]["flagged"] and rows[0]["anomaly_index"] > 2 and rows[0]["l1_norm"] == min(r["l1_norm"] for r in rows)
    assert not any(r["flagged"] for r in rows[1:])
    assert rows[0]["asr"] >= 0.85 and rows[0]["asr_ci"][0] <= rows[0]["asr"] <= rows[0]["asr_ci"][1]
    saved = artifacts.load_detection(run)
    assert saved["suspect"] == 0 and saved["score"]["key"] == "l1_norm"
    nc = artifacts.load_baseline(run, "neural-cleanse")  # the detection saved the reversed set for the defense
    assert nc["triggers"].shape == (10, 4, 32, 32) and len(nc["asr"]) == 10


def test_its_defense_and_unlearning_close_the_backdoor(detected, tmp_path):
    run = str(shutil.copytree(detected[0], tmp_path / "run"))
    for method in ("neural-cleanse", "unlearn"):
        out = cli("defend", run, "--method", method, "--epochs", "3", "--census-images", "32")
        assert out["before"]["asr"] > 0.9 and out["after"]["asr"] < out["before"]["asr"] / 2, (method, out)
        assert out["after"]["clean_acc"] >= out["before"]["clean_acc"] - 0.05
        assert out["census"]["after"]["open"] < out["census"]["before"]["open"]


def test_baseline_runs_it_and_refuses_settings_it_does_not_have(detected, capsys, tmp_path):
    run = str(shutil.copytree(detected[0], tmp_path / "run"))
    assert main(["baseline", run, "--method", "neural-cleanse", "--restarts", "3"]) == 2
    assert "--restarts is not a setting of neural-cleanse" in capsys.readouterr().err
    out = cli("baseline", run, "--method", "neural-cleanse", "--steps", "10")
    assert out["method"] == "neural-cleanse" and out["triggers"] == 10 and out["smallest"] in range(10)


def test_the_gallery_draws_a_full_image_trigger(detected):
    from ui.common import trigger_image

    triggers = artifacts.load_baseline(detected[0], "neural-cleanse")["triggers"]
    assert trigger_image(triggers[0], 48).size == (48, 48)


@pytest.mark.parametrize("pattern", [r"neural.cleanse\|\bNC\b", r"\bunlearn\b"])
def test_a_method_name_lives_in_at_most_three_files(pattern):
    listed = subprocess.run(["grep", "-rliI", "--include=*.py", pattern, "mesa", "pages", "ui", "app.py"], cwd=ROOT,
                            capture_output=True, text=True).stdout.split()
    assert 1 <= len(listed) <= 3, listed
