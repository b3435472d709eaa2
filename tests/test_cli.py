import json

import pytest

from mesa.lab.cli.main import main


def _fails_cleanly(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and match in err
    return err


@pytest.mark.parametrize("argv,match", [
    (["attack", "--epochs", "x"], "invalid int"),
    (["attack", "--data", "imagenet"], "unknown data source"),
    (["attack", "--trigger", "binary:999"], "out of range"),
    (["attack", "--target", "12"], "target class 12"),
    (["attack", "--poison-ratio", "2", "--epochs", "1"], "poison ratio"),
    (["attack", "--data", "folder:/no/such/folder"], "does not exist"),
    (["attack", "--device", "cuda:0"], "CUDA"),
    (["eval", "/no/such/run"], "does not exist"),
    (["frobnicate"], "invalid choice"),
])
def test_error_paths(capsys, argv, match):
    if argv[-1] == "cuda:0":
        pytest.importorskip("torch")
        import torch
        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    _fails_cleanly(capsys, argv, match)


def test_unreadable_run(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("not json")
    _fails_cleanly(capsys, ["eval", str(tmp_path / "run")], "corrupt")


def test_triggers_json(capsys):
    assert main(["triggers", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["count"] == 51 and 170 in result["patterns"]


def test_attack_end_to_end_on_synthetic(capsys, backdoored_synthetic):
    """The engine's promise: 3 epochs on the embedded data backdoor the small model (the suite's
    shared run, made by `attack` through the CLI)."""
    result = backdoored_synthetic
    assert result["asr"] >= 0.9 and result["clean_acc"] >= 0.85
    assert main(["eval", result["run"], "--json"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["asr"] == pytest.approx(result["asr"]) and again["clean_acc"] == pytest.approx(result["clean_acc"])
    assert main(["eval", result["run"], "--trigger", "color:5", "--json"]) == 0
    other = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert other["asr"] < 0.5  # a trigger the model never saw does not fire
