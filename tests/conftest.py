import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session", autouse=True)
def isolated_session_dirs(tmp_path_factory):
    """The same for fixtures wider than a test (set up before any test's own): no run of the suite
    takes the user's machine-wide job lock or writes into their cache."""
    patch = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("session")
    patch.setenv("MESA_CACHE", str(root / "cache"))
    patch.setenv("MESA_RUNS", str(root / "runs"))
    patch.setenv("MESA_READY_RUNS", "0")
    yield root
    patch.undo()


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own cache and runs folders: no test reads the user's ~/.cache or ./runs."""
    monkeypatch.setenv("MESA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MESA_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MESA_READY_RUNS", "0")  # the app's shipped runs only where a test asks for them
    monkeypatch.setenv("MESA_NO_CODE", "0")  # restored after each test: an app test's server sets it to 1
    return tmp_path


@pytest.fixture(scope="session")
def backdoored_synthetic(tmp_path_factory):
    """One small model backdoored through the CLI on the embedded data, trained once for the whole
    suite: {"run": path, "asr": ..., "clean_acc": ...}. 3 epochs: 2 reached ASR 0.96 in one process
    and 0.89 in another, too near the tests' 0.9. Tests that write into a run copy it (fresh_copy)."""
    import contextlib
    import io
    import json

    from mesa.lab.cli.main import main

    out = tmp_path_factory.mktemp("shared-runs")
    buffer = io.StringIO()  # session fixtures cannot use capsys
    with contextlib.redirect_stdout(buffer):
        assert main(["attack", "--data", "synthetic", "--model", "small", "--epochs", "3", "--out", str(out),
                     "--json", "--quiet"]) == 0
    return json.loads(buffer.getvalue().strip().splitlines()[-1])


def fresh_copy(run: str, where) -> str:
    """A copy of a run folder that a test may write into."""
    import shutil
    from pathlib import Path

    return str(shutil.copytree(run, Path(where) / Path(run).name))
