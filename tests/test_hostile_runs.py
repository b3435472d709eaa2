"""Half-saved runs, bad configs, unbounded counts and the machine's turn (issue 24, items 3-5, 7-9, 11):
each failure is one line (exit 2) before any work, a save cut short is refused on load, and a killed
sweep leaves nothing training."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mesa import atomic
from mesa.errors import MesaError
from mesa.lab.storage import artifacts
from mesa.lab.jobs import machine_lock
from mesa.lab.cli.main import main
from mesa.lab.jobs.queue import DONE, JobQueue
from mesa.lab.storage.runs import list_runs, load_run, runs_root
from mesa.method.census import Census
from mesa.method.generator import TriggerGenerator
from mesa.method.search import SearchConfig
from tests.conftest import fresh_copy
from tests.test_machine_jobs import counting, wait_until

ROOT = Path(__file__).resolve().parent.parent


def fails_in_one_line(capsys, argv, match, seconds=20.0):
    """The command exits 2 within `seconds` with one line on stderr holding `match`."""
    start = time.time()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and match in err, err
    assert time.time() - start < seconds


# item 3: a stage's files are one set

def _results(seed: float):
    torch.manual_seed(int(seed * 10))
    return [SimpleNamespace(beta=0.5, generator=TriggerGenerator(3, 8, 16), samples=torch.rand(4, 3, 3, 3) + seed,
                            samples_asr=torch.full((4,), seed), snapshots=[], curve=[],
                            summary=lambda: {"beta": 0.5, "mean_asr": seed})]


def _fail_on(monkeypatch, name):
    """Make the atomic write of `name` raise, as a kill just before it would leave the others written."""
    real = atomic.write_bytes

    def write(path, data):
        if Path(path).name == name:
            raise KeyboardInterrupt("killed")
        real(path, data)

    monkeypatch.setattr(atomic, "write_bytes", write)


def test_a_search_cut_short_before_its_json_is_refused_on_load(tmp_path, monkeypatch):
    cfg = SearchConfig(noise_dim=8)
    artifacts.save_search(tmp_path, _results(0.25), cfg, 0, 16)
    assert artifacts.load_search(tmp_path)["betas"][0.5]["asr"][0] == 0.25  # the complete set loads
    _fail_on(monkeypatch, "search.json")
    with pytest.raises(KeyboardInterrupt):
        artifacts.save_search(tmp_path, _results(0.75), cfg, 0, 16)  # new generator and samples, old JSON
    with pytest.raises(MesaError, match="does not match the results saved with it"):
        artifacts.load_search(tmp_path)
    monkeypatch.undo()
    artifacts.save_search(tmp_path, _results(0.75), cfg, 0, 16)  # a search run again mends it
    assert artifacts.load_search(tmp_path)["betas"][0.5]["asr"][0] == 0.75


def test_a_defense_cut_short_refuses_its_weights_and_its_census(tmp_path, monkeypatch):
    def census(value):
        return [("defense-finetune", Census("binary", ["binary:1"], torch.zeros(1, 3, 3, 3),
                                            torch.full((1, 10), value), 0), {"open": 0}, {"images": 8})]

    model = torch.nn.Linear(2, 2)
    artifacts.save_defense(tmp_path, {"method": "finetune"}, model, census(0.1))
    assert artifacts.load_defended_state(tmp_path, "finetune") is not None
    assert artifacts.load_census(tmp_path, "defense-finetune")["census"].rates[0, 0] == pytest.approx(0.1)
    _fail_on(monkeypatch, "defense-finetune.json")
    with pytest.raises(KeyboardInterrupt):
        artifacts.save_defense(tmp_path, {"method": "finetune"}, torch.nn.Linear(2, 2), census(0.9))
    with pytest.raises(MesaError, match="does not match"):
        artifacts.load_defended_state(tmp_path, "finetune")
    with pytest.raises(MesaError, match="save did not finish"):
        artifacts.load_census(tmp_path, "defense-finetune")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporary_folders_of_killed_saves_are_removed_when_the_runs_are_listed():
    root = runs_root()
    root.mkdir(parents=True)
    dead = root / f".synthetic-small-run.{_dead_pid()}-abcd1234"
    live = root / f".synthetic-small-other.{os.getpid()}-abcd1234"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "model.pt").write_bytes(b"half")
        os.utime(folder, (time.time() - 120, time.time() - 120))
    assert list_runs() == []
    assert not dead.exists() and live.exists()  # a live save's folder is kept


# item 4: sweep workers die with the sweep

SLEEPER = """
import os, time

def sleep(i):
    os.write(1, f"{os.getpid()}\\n".encode())  # one write: the two workers' lines cannot interleave
    time.sleep(120)
"""
SWEEP = """
import sys
sys.path.insert(0, r"{helpers}")
from sleeper import sleep
from mesa.lab.sweep.run import ExecutorConfig, execute

for _ in execute(sleep, [(1,), (2,)], ExecutorConfig(parallel=2)):
    pass
"""


def test_a_killed_parallel_sweep_leaves_no_worker_running(tmp_path):
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    parent = subprocess.Popen([sys.executable, "-c", SWEEP.format(helpers=tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    workers = [int(parent.stdout.readline()) for _ in range(2)]
    parent.send_signal(signal.SIGKILL)
    parent.wait(30)
    try:
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() and _running(pid) for pid in workers), 10)
    finally:
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


# item 5: one line instead of a traceback

@pytest.mark.parametrize("change,match", [
    (lambda c: c.pop("num_classes"), "lacks 'num_classes'"),
    (lambda c: c.update(mean="0.5"), "has a str for 'mean'"),
    (lambda c: c.update(model=7), "has a int for 'model'"),
    (lambda c: c.update(target="0"), "has a str for 'target'"),
    (lambda c: c.update(mean=[0.5, 0.5]), "mean and std must be 3 numbers"),
    (lambda c: c.update(target=99), "target 99 out of range"),
])
def test_a_run_with_a_broken_config_is_one_line(capsys, tmp_path, backdoored_synthetic, change, match):
    run = Path(fresh_copy(backdoored_synthetic["run"], tmp_path))
    config = json.loads((run / "config.json").read_text())
    change(config)
    (run / "config.json").write_text(json.dumps(config))
    fails_in_one_line(capsys, ["eval", str(run)], match)
    with pytest.raises(MesaError, match=match):
        load_run(run)


def test_a_search_json_without_its_config_is_one_line(tmp_path):
    (tmp_path / "mesa").mkdir()
    (tmp_path / "mesa" / "search.json").write_text(json.dumps({"target": 0, "hidden": 16, "betas": []}))
    with pytest.raises(MesaError, match="lacks 'config'"):
        artifacts.load_search(tmp_path)
    (tmp_path / "mesa" / "search.json").write_text(json.dumps({"config": {}, "target": 0, "hidden": 16,
                                                               "betas": [{"beta": 0.5}]}))
    with pytest.raises(MesaError, match="not a MESA Lab search.json"):
        artifacts.read_search_meta(tmp_path)


def test_search_samples_0_is_refused_before_the_search(capsys, monkeypatch, backdoored_synthetic):
    from mesa.lab.pipeline import stages

    monkeypatch.setattr(stages, "search", lambda *a, **k: pytest.fail("the search ran"))
    fails_in_one_line(capsys, ["search", backdoored_synthetic["run"], "--samples", "0", "--quiet"], "--samples")


def _one_class_folder(root: Path) -> Path:
    from PIL import Image

    for split in ("train", "test"):
        (root / split / "cat").mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(root / split / "cat" / f"{i}.png")
    return root


def test_a_one_class_folder_is_one_line_and_json_never_holds_nan(capsys, tmp_path, monkeypatch):
    folder = _one_class_folder(tmp_path / "pets")
    fails_in_one_line(capsys, ["attack", "--data", f"folder:{folder}", "--epochs", "1", "--json", "--quiet"],
                      "one class folder")
    from mesa.lab.cli import main as cli

    monkeypatch.setattr(cli, "cmd_triggers", lambda args: {"asr": float("nan"), "curve": [float("inf"), 0.5]})
    assert main(["triggers", "--json"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in JSON")) == {"asr": None, "curve": [None, 0.5]}


# item 7: every count has a cap

def test_unbounded_counts_are_refused_in_one_line(capsys, tmp_path, backdoored_synthetic):
    fails_in_one_line(capsys, ["census", backdoored_synthetic["run"], "--family", "color", "--samples", "99999999"],
                      "at most 65536 triggers")
    fails_in_one_line(capsys, ["sweep", "--triggers", "binary:0-99999", "--out", str(tmp_path)], "at most 1000 cases")
    fails_in_one_line(capsys, ["sweep", "--triggers", "color:0-600", "--data", "synthetic", "cifar10",
                               "--out", str(tmp_path)], "plans 1202 cases")
    fails_in_one_line(capsys, ["sweep", "--census-samples", "70000", "--out", str(tmp_path)], "at most 65536")
    assert not (tmp_path / "bases").exists()


# item 8: validate first, then lock; read-only commands take no lock

def test_mistakes_and_read_only_commands_answer_while_another_job_holds_the_machine(capsys, tmp_path):
    (tmp_path / "results.md").write_text("| case |\n")
    answers = {}
    with machine_lock.machine_turn("a long job"):
        def ask():
            answers["search"] = main(["search", "/nope"])
            answers["table"] = main(["sweep", "--table", "--out", str(tmp_path)])
            answers["target"] = main(["sweep", "--targets", "99", "--out", str(tmp_path)])

        thread = threading.Thread(target=ask, daemon=True)
        thread.start()
        thread.join(20)
        assert not thread.is_alive(), "a command waited for the machine"
    assert answers == {"search": 2, "table": 0, "target": 2}
    captured = capsys.readouterr()
    assert "| case |" in captured.out and "waiting" not in captured.err
    assert "/nope does not exist" in captured.err and "target class 99 out of range" in captured.err


# item 9: job ids are unique across servers

def test_two_servers_on_one_runs_folder_never_share_a_job_id():
    first, second = JobQueue(), JobQueue()  # both start before either has a job
    a, b = first.submit("count", "first", counting), second.submit("count", "second", counting)
    assert a.id != b.id
    assert first.wait(a).status == DONE and second.wait(b).status == DONE
    assert sorted(j.label for j in JobQueue().jobs()) == ["first", "second"]  # neither record overwritten


# item 11: smaller gaps

def test_smaller_gaps_are_refused_before_any_work(capsys, tmp_path, backdoored_synthetic):
    fails_in_one_line(capsys, ["attack", "--lr", "0", "--epochs", "1"], "--lr must be a positive number")
    fails_in_one_line(capsys, ["eval", backdoored_synthetic["run"], "--target", "99"], "target class 99 out of range")
    run = Path(fresh_copy(backdoored_synthetic["run"], tmp_path))
    fails_in_one_line(capsys, ["census", str(run), "--defense", "ensemble"], "no defended model saved for 'ensemble'")
    assert not list(run.glob("mesa/census-*"))  # no census was taken first
    fails_in_one_line(capsys, ["sweep", "--targets", "99", "--out", str(tmp_path / "sweep")],
                      "target class 99 out of range: synthetic has classes 0..9")
