"""`eval --json` and `census --json` carry each rate's count and 95% interval, as [low, high], never NaN."""
import json
import shutil
from pathlib import Path

from mesa.lab.cli.main import main

READY = next((Path(__file__).resolve().parents[1] / "assets" / "runs").iterdir())


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_eval_and_census_json_keys(capsys, tmp_path):
    run = str(shutil.copytree(READY, tmp_path / READY.name))
    assert main(["eval", run, "--json", "--device", "cpu"]) == 0
    out = last_json(capsys)
    for key in ("asr", "clean_acc"):
        low, high = out[f"{key}_ci"]
        assert low <= out[key] <= high and out[f"{key}_images"] > 0
    assert out["clean_acc_images"] > out["asr_images"]  # the ASR counts only images outside the target class

    assert main(["census", run, "--images", "16", "--json", "--quiet", "--device", "cpu"]) == 0
    census = last_json(capsys)
    for key in ("worst_asr", "original_asr"):
        low, high = census[f"{key}_ci"]
        assert low <= census[key] <= high
    assert census["images"] == 16 and 0 <= census["noise_max"] <= 1 and census["worst_asr_fresh_ci"] is not None
    assert main(["census", run, "--images", "16", "--exhaustive", "--json", "--quiet", "--device", "cpu"]) == 0
    exhaustive = last_json(capsys)
    assert exhaustive["measured_images"] == 512 * 16 and exhaustive["open"] == census["open"]  # one look: the same
