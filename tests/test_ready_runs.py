"""The ready runs shipped with the app: complete, loadable, and installed without touching the originals."""
import torch

from mesa.lab.storage import artifacts
from mesa.lab.storage.ready_runs import OPENS_FIRST, SHIPPED, halve_weights, install_ready_runs, shipped_runs
from mesa.lab.storage.runs import list_runs, load_run


def test_a_ready_run_is_shipped_whole():
    runs = shipped_runs()
    assert runs, f"no ready run in {SHIPPED}: make one with `python -m mesa demo --ship`"
    for path in runs:
        run = load_run(path)
        assert run.metrics["asr"] >= 0.9 and run.trigger is not None
        assert artifacts.load_search(path) is not None and artifacts.load_baseline(path) is not None
        defenses = artifacts.load_defenses(path)
        assert {"ensemble", "pixel-sgd", "finetune"} <= set(defenses)
        assert all("census" in d for d in defenses.values())
        kept = artifacts.kept_models(path)  # each pixel-SGD restart's defended model too: the Probe compares them
        assert {"ensemble", "finetune", "pixel-sgd-1", "pixel-sgd-2"} <= set(kept)
        assert all(artifacts.load_defended_state(path, m) is not None for m in kept)
        assert artifacts.load_census(path, "before")["summary"]["open"] >= 1
    assert sum(f.stat().st_size for p in runs for f in p.rglob("*")) < 25e6  # a few MB each


def test_install_copies_once_and_leaves_the_originals(tmp_path, monkeypatch):
    monkeypatch.setenv("MESA_READY_RUNS", "1")
    before = {f: f.stat().st_mtime for p in shipped_runs() for f in p.rglob("*")}
    added = install_ready_runs(tmp_path / "runs")
    assert [p.name for p in added] == [p.name for p in shipped_runs()]
    assert [p.name for p in list_runs(tmp_path / "runs")] == [p.name for p in added]
    assert list_runs(tmp_path / "runs")[0].name.startswith(OPENS_FIRST)  # the newest: a fresh app opens on it
    assert install_ready_runs(tmp_path / "runs") == []  # already there: nothing copied twice
    # a stage rerun writes into the copy, never into assets/
    copy = added[0]
    (copy / artifacts.FOLDER / "search.json").unlink()
    assert {f: f.stat().st_mtime for p in shipped_runs() for f in p.rglob("*")} == before


def test_install_is_off_in_tests_by_default(tmp_path):
    assert install_ready_runs(tmp_path / "runs") == []  # conftest sets MESA_READY_RUNS=0



def test_halved_weights_still_match_their_stage_files(tmp_path):
    """Shipping halves every state dict; the hashes in the stage JSONs follow, so the set still loads."""
    run = tmp_path / "run"
    artifacts.save_defense(run, {"method": "pixel-sgd"}, None, (), [torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)])
    halve_weights(run)
    state = artifacts.load_defended_state(run, "pixel-sgd-2")
    assert state["weight"].dtype == torch.float16
