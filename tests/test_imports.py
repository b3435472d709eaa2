"""Bring your own model: a backdoored synthetic run exported three ways (TorchScript, a bare state
dict, a BackdoorBench attack_result.pt) imports with trigger and target unknown, predicts as the
original does, and every stage runs on it; bad files fail in one line with nothing written."""
import contextlib
import io
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mesa.lab.storage import artifacts
from mesa.architectures import PreActResNet18
from mesa.lab.cli.main import main
from mesa.data import load_data
from mesa.method.metrics import predict
from mesa.lab.storage.runs import load_run
from mesa.method.triggers import binary_trigger, stamp

DATA = "synthetic:4000"  # 800 test images: 640 to model triggers on, 160 held out


def _cli(argv) -> dict:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(argv + ["--json", "--quiet"])
    assert code == 0, argv
    return json.loads(buffer.getvalue().strip().splitlines()[-1])


def _fails_cleanly(capsys, argv, match, runs: Path):
    before = sorted(os.listdir(runs)) if runs.is_dir() else []
    assert main(argv + ["--out", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and match in err, err
    assert (sorted(os.listdir(runs)) if runs.is_dir() else []) == before  # nothing half-written, no temp folder


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """One backdoored small model (binary:170 -> class 0) and its three exports."""
    root = tmp_path_factory.mktemp("byom")
    result = _cli(["attack", "--data", DATA, "--epochs", "4", "--poison-ratio", "0.05", "--out", str(root / "runs")])
    run = load_run(result["run"])
    exports = root / "exports"
    exports.mkdir()
    torch.jit.save(torch.jit.script(run.model), exports / "model.ts")  # with its normalisation inside
    body = {k[len("body."):]: v for k, v in run.model.state_dict().items() if k.startswith("body.")}
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in body.items()}, exports / "weights.safetensors")
    torch.save({f"module.{k}": v for k, v in body.items()}, exports / "weights.pth")  # nn.DataParallel's prefix
    bb = _backdoorbench_record(exports / "record" / "badnet_small", body, run.model, DATA)
    return {"run": run, "attack": result, "ts": exports / "model.ts", "safetensors": exports / "weights.safetensors",
            "pth": exports / "weights.pth", "bb": bb, "root": root}


def _backdoorbench_record(folder: Path, body: dict, model, data_spec: str, poisoned: int = 200) -> Path:
    """An attack_result.pt laid out as BackdoorBench v2 saves it, poisoned test images as PNGs on disk."""
    data = load_data(data_spec)
    keep = torch.nonzero(data.test_labels != 0).flatten()[:poisoned]
    g = torch.Generator().manual_seed(1)
    stamped = stamp(data.test_images[keep], binary_trigger(170), generator=g)
    data_dict = {}
    for i, img, label in zip(keep.tolist(), stamped, data.test_labels[keep].tolist()):
        png = folder / "bd_test_dataset" / str(label) / f"{i}.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(png)
        data_dict[np.int64(i)] = {"path": f"./record/{folder.name}/bd_test_dataset/{label}/{i}.png",
                                  "other_info": [0, label]}
    indicator = np.zeros(len(data.test_labels))
    indicator[keep.numpy()] = 1
    bd_test = {"bd_data_container": {"save_folder_path": f"./record/{folder.name}/bd_test_dataset",
                                     "data_dict": data_dict, "save_file_format": ".png"},
               "getitem_all": True, "getitem_all_switch": False,
               "original_index_array": np.arange(len(data.test_labels)), "poison_indicator": indicator,
               "save_folder_path": f"./record/{folder.name}/bd_test_dataset"}
    torch.save({"model_name": "small", "num_classes": 10, "model": {f"module.{k}": v for k, v in body.items()},
                "data_path": "./data/synthetic", "img_size": [32, 32, 3], "clean_data": "synthetic",
                "bd_train": None, "bd_test": bd_test}, folder / "attack_result.pt")
    return folder / "attack_result.pt"


@pytest.fixture(scope="module")
def imported(attacked):
    """The three exports imported, target and trigger unknown."""
    out = str(attacked["root"] / "imported")
    runs = {
        "torchscript": _cli(["import", str(attacked["ts"]), "--data", DATA, "--trust-code", "--out", out]),
        "safetensors": _cli(["import", str(attacked["safetensors"]), "--data", DATA, "--arch", "small", "--out", out]),
        "pth": _cli(["import", str(attacked["pth"]), "--data", DATA, "--arch", "small", "--out", out]),
        "backdoorbench": _cli(["import", str(attacked["bb"]), "--data", DATA, "--out", out]),
    }
    return runs


def test_imports_predict_as_the_original(attacked, imported):
    data = load_data(DATA)
    expected = predict(attacked["run"].model, data.test_images)
    for fmt, result in imported.items():
        run = load_run(result["run"])
        assert run.target is None and run.trigger is None, fmt
        assert torch.equal(predict(run.model, data.test_images), expected), fmt
        assert result["clean_acc"] == pytest.approx(attacked["attack"]["clean_acc"]) and "warning" not in result
        source = run.config["source"]
        assert len(source["sha256"]) == 64 and source["format"] in fmt.replace("pth", "state-dict").replace(
            "safetensors", "state-dict")
    assert load_run(imported["torchscript"]["run"]).config["model"] == "torchscript"


def test_backdoorbench_poisoned_images_give_the_attackers_asr(attacked, imported):
    result = imported["backdoorbench"]
    assert result["attacker_images"] == 200 and result["attacker_targets"] == [0]
    assert result["attacker_asr"] == pytest.approx(attacked["attack"]["asr"], abs=0.06)
    run = load_run(result["run"])
    assert run.config["source"]["model_name"] == "small" and run.config["source"]["poisoned_read"] == 200
    assert (run.path / "poisoned.pt").is_file()


def test_detection_then_search_defense_and_census_without_target_or_trigger(imported, capsys):
    run = imported["torchscript"]["run"]
    assert main(["search", run, "--epochs", "1"]) == 2  # no target yet: it says how to get one
    assert "detect" in capsys.readouterr().err
    found = _cli(["detect", run, "--no-search", "--census-images", "16"])  # the census alone: seconds
    assert found["suspect"] == 0 and found["evidence"] == "census"  # the attacked class
    assert found["census_open_per_class"][0] == max(found["census_open_per_class"]) > 0
    search = _cli(["search", run, "--betas", "0.8", "--epochs", "8", "--samples", "32"])  # toward the suspect
    assert search["target"] == 0 and search["betas"][0]["mean_asr"] >= 0.5
    defense = _cli(["defend", run, "--method", "ensemble", "--epochs", "2", "--census-images", "16"])
    assert "asr" not in defense["after"] and defense["worst_asr"] is None  # no planted trigger to measure
    assert defense["samples_asr"]["after"] < defense["samples_asr"]["before"]
    before, after = defense["census"]["before"], defense["census"]["after"]
    assert before["open"] > 0 and after["open"] < before["open"] and defense["census"]["closure"] >= 0.5


def test_every_page_renders_an_imported_run(imported, monkeypatch):
    """The imported run (detected, searched and defended above) fills every page like any other; one
    fresh from import (target unknown, nothing run yet) too."""
    testing = pytest.importorskip("streamlit.testing.v1")
    from ui.entry import PAGES as APP_PAGES
    from mesa.lab.jobs import queue

    monkeypatch.setattr(queue, "_QUEUE", queue.JobQueue())
    runs = Path(os.environ["MESA_RUNS"])
    for fmt, pages in (("torchscript", [script for script, _, _ in APP_PAGES]), ("pth", ["model", "mesa_search"])):
        shutil.copytree(imported[fmt]["run"], runs / Path(imported[fmt]["run"]).name)
        for page in pages:
            at = testing.AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=60)
            at.run()
            at.switch_page(f"pages/{page}.py")
            at.run()
            assert not at.exception, (fmt, page, [e.message for e in at.exception])
            assert not at.error, (fmt, page, [e.value for e in at.error])


def test_a_given_trigger_and_target_are_measured(attacked):
    result = _cli(["import", str(attacked["ts"]), "--data", DATA, "--trust-code", "--trigger", "binary:170",
                   "--target", "0", "--out", str(attacked["root"] / "given")])
    assert result["asr"] == pytest.approx(attacked["attack"]["asr"])


def test_preact_resnet18_from_backdoorbench_and_torchvision_state_dicts(tmp_path):
    torch.manual_seed(0)
    net = PreActResNet18(10).eval()
    record = tmp_path / "record" / "badnet_0_1"
    record.mkdir(parents=True)
    torch.save({"model_name": "preactresnet18", "num_classes": 10, "img_size": [32, 32, 3], "clean_data": "cifar10",
                "model": {f"module.{k}": v for k, v in net.state_dict().items()}, "bd_test": None},
               record / "attack_result.pt")
    result = _cli(["import", str(record / "attack_result.pt"), "--data", "synthetic:500", "--out", str(tmp_path / "r")])
    run = load_run(result["run"])
    assert run.config["model"] == "preactresnet18"
    assert run.config["mean"] == pytest.approx([0.4914, 0.4822, 0.4465])  # BackdoorBench's CIFAR-10 normalisation
    x = load_data("synthetic:500").test_images[:8].float() / 255
    with torch.no_grad():
        mean, std = torch.tensor(run.config["mean"]).view(1, 3, 1, 1), torch.tensor(run.config["std"]).view(1, 3, 1, 1)
        assert torch.allclose(run.model(x), net((x - mean) / std), atol=1e-4)
    from torchvision.models import resnet18
    torch.save(resnet18(num_classes=10).state_dict(), tmp_path / "tv.pt")
    tv = _cli(["import", str(tmp_path / "tv.pt"), "--data", "synthetic:500", "--arch", "torchvision-resnet18",
               "--out", str(tmp_path / "r")])
    assert "warning" in tv  # untrained: near chance, and it says so


class Payload:
    """An object whose unpickling would run code: import must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_bad_files_fail_in_one_line_and_write_nothing(attacked, tmp_path, capsys):
    runs = tmp_path / "runs"
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(4096))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(attacked["pth"].read_bytes()[:20000])
    code = tmp_path / "code.pt"
    torch.save({"model": Payload()}, code)
    whole = tmp_path / "whole.pt"
    torch.save(attacked["run"].model, whole)
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    pickled = tmp_path / "plain.pkl"
    pickled.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    no_tensors = tmp_path / "settings.pt"
    torch.save({"lr": 0.1}, no_tensors)
    sd = str(attacked["pth"])
    cases = [
        ([str(junk), "--data", DATA, "--arch", "small"], "not a readable model file"),
        ([str(truncated), "--data", DATA, "--arch", "small"], "not a readable model file"),
        ([str(code), "--data", DATA, "--arch", "small"], "pickled code"),
        ([str(whole), "--data", DATA, "--arch", "small"], "re-save its weights as a plain state dict"),
        ([str(bad_st), "--data", DATA, "--arch", "small"], ".safetensors"),
        ([str(pickled), "--data", DATA, "--arch", "small"], "not a readable model file"),
        ([str(no_tensors), "--data", DATA, "--arch", "small"], "no state dict"),
        ([sd, "--data", DATA, "--arch", "resnet18"], "not a resnet18 state dict"),
        ([sd, "--data", DATA, "--arch", "preactresnet18"], "not a preactresnet18 state dict"),
        ([sd, "--data", DATA], "--arch"),
        ([sd, "--data", DATA, "--arch", "small", "--num-classes", "5"], "does not fit small with 5 classes"),
        ([sd, "--data", "synthetic100:500", "--arch", "small"], "has 100"),
        ([sd, "--data", "mnist", "--arch", "small"], "unknown data source"),
        ([sd, "--data", DATA, "--arch", "vgg11"], "unknown architecture"),
        ([sd, "--data", DATA, "--arch", "small", "--target", "10"], "out of range"),
        ([sd, "--data", DATA, "--arch", "small", "--location", "corner"], "bad location"),
        ([str(tmp_path / "missing.pt"), "--data", DATA], "does not exist"),
        ([str(attacked["ts"]), "--data", DATA, "--trust-code", "--num-classes", "7"], "--num-classes 7"),
        ([str(attacked["bb"]), "--data", DATA, "--num-classes", "7"], "--num-classes 7"),
    ]
    for argv, match in cases:
        _fails_cleanly(capsys, ["import", *argv], match, runs)
    assert not list(Path(os.environ["MESA_RUNS"]).glob("*")) if Path(os.environ["MESA_RUNS"]).exists() else True


def test_an_upload_is_imported_or_refused_leaving_nothing(attacked, tmp_path):
    from mesa.errors import MesaError
    from mesa.lab.imports.model_import import ImportConfig, import_upload

    cfg = ImportConfig(file="", data=DATA, arch="small", out=str(tmp_path / "runs"))
    path, metrics = import_upload(attacked["pth"].read_bytes(), "weights.pth", cfg)
    assert load_run(path).config["source"]["file"] == "upload:weights.pth" and metrics["clean_acc"] > 0.9
    for raw, limit, match in ((os.urandom(4096), 1 << 20, "not a readable model file"),
                              (attacked["pth"].read_bytes(), 1000, "upload limit")):
        with pytest.raises(MesaError, match=match):
            import_upload(raw, "model.pt", cfg, limit=limit)
    assert os.listdir(tmp_path / "runs") == [path.name]

