"""Files made by a hostile stranger (issue 24), each made here: a TorchScript program that writes a
file when loaded or called, and files whose fields have the wrong types (files hostile by their
size: tests/test_hostile_sizes.py). Each is refused in one line (the CLI: exit 2;
the app's upload: a MesaError, shown as one box), nothing of it is run and nothing is written."""
import io
import os
import re
import threading
import warnings
import zlib
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest
import torch
from PIL import Image

from mesa.errors import MesaError
from mesa.lab.cli.main import main
from mesa.lab.imports.model_import import ImportConfig, import_upload
from mesa.lab.jobs.machine_lock import machine_turn
from mesa.models import build_model

ROOT = Path(__file__).resolve().parents[1]
DATA = "synthetic:500"


class WritesWhenCalled(torch.nn.Module):
    """A working classifier whose forward also creates a file of the attacker's choosing."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.fc = torch.nn.Linear(3, 10)

    def forward(self, x):
        written = torch.from_file(self.path, shared=True, size=1)  # creates the file
        return self.fc(x.mean((2, 3))) + 0 * written


class WritesWhenLoaded(torch.nn.Module):
    """A program whose __setstate__ (run by torch.jit.load itself) creates a file; no parameters."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.register_buffer("w", torch.zeros(10, 3))

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, torch.Tensor, bool]:
        return self.path, self.w, self.training

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, torch.Tensor, bool]):
        self.path, self.w, self.training = state[0], state[1], state[2]
        self.w.add_(torch.from_file(self.path, shared=True, size=1))

    def forward(self, x):
        return x.mean((2, 3)) @ self.w.t()


class ReturnsText(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 10)

    def forward(self, x) -> str:
        return "not scores"


class ReturnsTuple(ReturnsText):
    def forward(self, x) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.fc(x.mean((2, 3))), x


def _script(module: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
        torch.jit.save(torch.jit.script(module), str(path))
    return path


def _fails_in_one_line(capsys, argv, match, runs: Path) -> str:
    assert main(argv + ["--out", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and match in err, err
    assert not runs.exists() or not os.listdir(runs)  # no run, no temp folder
    return err


def test_torchscript_is_refused_without_trust_code_and_never_run(tmp_path, capsys):
    called, loaded = tmp_path / "written-by-forward", tmp_path / "written-by-setstate"
    programs = [_script(WritesWhenCalled(str(called)), tmp_path / "model.ts"),
                _script(WritesWhenLoaded(str(loaded)), tmp_path / "innocent.pt")]
    runs = tmp_path / "runs"
    for program in programs:
        for extra in ([], ["--format", "torchscript"], ["--format", "state-dict", "--arch", "small"]):
            _fails_in_one_line(capsys, ["import", str(program), "--data", DATA, *extra], "--trust-code", runs)
    assert not called.exists() and not loaded.exists()
    # the files really are hostile: trusted, the first runs (and writes), the second writes as it loads
    assert main(["import", str(programs[0]), "--data", DATA, "--trust-code", "--out", str(runs), "--quiet"]) == 0
    assert called.exists() and len(os.listdir(runs)) == 1
    capsys.readouterr()
    assert main(["import", str(programs[1]), "--data", DATA, "--trust-code", "--out", str(tmp_path / "r2")]) == 2
    assert loaded.exists() and "no weights" in capsys.readouterr().err


def test_a_trusted_torchscript_run_is_never_run_by_the_app_server(tmp_path, capsys, monkeypatch):
    """Imported on the command line with --trust-code, the run sits in the runs folder the app serves:
    a process with MESA_NO_CODE=1 (the app server and its jobs) refuses to load its program."""
    from mesa.lab.storage.runs import NO_CODE, load_run

    called = tmp_path / "written-by-forward"
    program = _script(WritesWhenCalled(str(called)), tmp_path / "model.ts")
    runs = tmp_path / "runs"
    assert main(["import", str(program), "--data", DATA, "--trust-code", "--out", str(runs), "--quiet"]) == 0
    called.unlink()
    monkeypatch.setenv(NO_CODE, "1")
    with pytest.raises(MesaError, match="never runs it"):
        load_run(next(runs.iterdir()))
    assert not called.exists()


def test_an_uploaded_torchscript_is_refused_and_never_run(tmp_path):
    called, loaded = tmp_path / "written-by-forward", tmp_path / "written-by-setstate"
    cfg = ImportConfig(file="", data=DATA, out=str(tmp_path / "runs"))
    for module, name in ((WritesWhenCalled(str(called)), "model.ts"), (WritesWhenLoaded(str(loaded)), "weights.pt")):
        raw = _script(module, tmp_path / name).read_bytes()
        with pytest.raises(MesaError, match="TorchScript program, which is code"):
            import_upload(raw, name, cfg)
    assert not called.exists() and not loaded.exists() and not (tmp_path / "runs").exists()


def test_a_trusted_torchscript_with_odd_outputs_fails_in_one_line(tmp_path, capsys):
    for module, match in ((ReturnsText(), "outputs a str"), (ReturnsTuple(), "outputs a tuple")):
        program = _script(module, tmp_path / "odd.ts")
        _fails_in_one_line(capsys, ["import", str(program), "--data", DATA, "--trust-code"], match, tmp_path / "runs")


def _png(width: int, height: int) -> bytes:
    """A 1 x 1 PNG whose header says width x height: what Image.open reads before any pixel."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    png = bytearray(buffer.getvalue())
    png[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")  # IHDR's data starts at byte 16
    png[29:33] = zlib.crc32(bytes(png[12:29])).to_bytes(4, "big")
    return bytes(png)


def test_uploaded_triggers_get_a_safe_name_and_rejects_are_removed():
    from mesa.lab.storage.runs import runs_root
    from ui.trigger_pick import save_uploaded_trigger

    good = io.BytesIO()
    Image.new("RGB", (3, 3), "white").save(good, "PNG")
    spec, trigger = save_uploaded_trigger(good.getvalue(), "../../..\\evil name?;rm -rf.png", 32)
    folder = runs_root() / "uploaded-triggers"
    path = Path(spec.removeprefix("file:"))
    assert path.parent == folder and re.fullmatch(r"[0-9a-f]{12}-[A-Za-z0-9._-]{1,60}", path.name), path
    assert trigger.shape == (3, 3, 3)
    for raw, match in ((_png(20000, 20000), "huge image"), (_png(16, 16), "at most 8x8"),
                       (b"\x89PNG" + bytes(2 << 20), "at most 1 MiB")):
        with pytest.raises(MesaError, match=match):
            save_uploaded_trigger(raw, "t.png", 32)
    assert os.listdir(folder) == [path.name]


def test_wrong_types_in_imported_files_fail_in_one_line(tmp_path, capsys):
    model = build_model("small", 10)
    body = {k.removeprefix("body."): v for k, v in model.state_dict().items() if k.startswith("body.")}
    weights = tmp_path / "weights.pt"
    torch.save(body, weights)
    five = tmp_path / "model.pt"  # a MESA Lab model.pt whose normalisation has 5 channels
    torch.save({**model.state_dict(), "mean": torch.zeros(5), "std": torch.ones(5)}, five)
    record = {"model_name": "small", "num_classes": 10, "model": body, "img_size": (32, 32, 3),
              "clean_data": "synthetic"}
    bb = {}
    for name, change in (("size", {"img_size": ["thirty-two", 32, 3]}), ("classes", {"num_classes": "-3"}),
                         ("labels", {"bd_test": {"x": [np.zeros((32, 32, 3), np.uint8)], "y": ["cat"],
                                                 "original_targets": ["dog"]}})):
        bb[name] = tmp_path / f"{name}-attack_result.pt"
        torch.save({**record, **change}, bb[name])
    cases = [
        ([bb["size"]], "img_size \"['thirty-two', 32, 3]\" is not a list of numbers"),
        ([bb["labels"]], "labels are not class numbers"),
        ([bb["classes"]], "num_classes -3 is out of range"),
        ([weights, "--arch", "small", "--num-classes", "-3"], "--num-classes -3 is out of range"),
        ([weights, "--arch", "small", "--mean", "1", "2", "3", "4", "5"], "unrecognized arguments: 4 5"),
        ([weights, "--arch", "small", "--std", "0", "1", "1"], "--std takes 3 finite positive numbers"),
        ([five, "--arch", "small"], "the file's mean takes 3 finite numbers"),
    ]
    for argv, match in cases:
        _fails_in_one_line(capsys, ["import", *map(str, argv), "--data", DATA], match, tmp_path / "runs")
    with pytest.raises(MesaError, match="img_size"):  # through the app's upload: one error box
        import_upload(bb["size"].read_bytes(), "attack_result.pt", ImportConfig(file="", data=DATA))


def test_the_apps_import_waits_for_the_machine(tmp_path):
    torch.save({k.removeprefix("body."): v for k, v in build_model("small", 10).state_dict().items()
                if k.startswith("body.")}, tmp_path / "weights.pt")
    cfg = ImportConfig(file="", data=DATA, arch="small", out=str(tmp_path / "runs"))
    waiting, done = threading.Event(), []
    worker = threading.Thread(target=lambda: done.append(import_upload(
        (tmp_path / "weights.pt").read_bytes(), "weights.pt", cfg, on_wait=lambda message: waiting.set())))
    with machine_turn("a training job"):
        worker.start()
        assert waiting.wait(30) and not done and not (tmp_path / "runs").exists()
    worker.join(60)
    assert done and done[0][0].is_dir()
