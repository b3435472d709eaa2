import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own cache and runs folders: no test reads the user's ~/.cache or ./runs."""
    monkeypatch.setenv("MESA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MESA_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MESA_READY_RUNS", "0")  # the app's shipped runs only where a test asks for them
    return tmp_path
