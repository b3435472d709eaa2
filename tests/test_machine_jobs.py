"""A server that holds a class: one heavy job per machine across processes (the app's queue and the
CLI wait for each other, saying who they wait for), and a job history that survives a restart."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mesa.lab.jobs import history
from mesa.lab.jobs import machine_lock
from mesa.lab.jobs.queue import CANCELLED, DONE, INTERRUPTED, RUNNING, WAITING, JobQueue
from mesa.progress import Progress
from mesa.lab.storage.runs import list_runs, runs_root

ROOT = Path(__file__).resolve().parent.parent
HOLD = ("import sys; from mesa.lab.jobs.machine_lock import machine_turn\n"
        "with machine_turn('holder test'):\n    print('held', flush=True); sys.stdin.readline()\n")


@pytest.fixture
def holder():
    """Another process holding the machine until the test lets go (closes its stdin)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.stdin.close()
    proc.wait(30)


def wait_until(condition, timeout=30.0):
    end = time.time() + timeout
    while not condition():
        assert time.time() < end, "timed out"
        time.sleep(0.05)


def test_the_lock_says_who_holds_it_and_the_second_waits_its_turn(holder):
    told, inside = [], threading.Event()

    def second():
        with machine_lock.machine_turn("second", told.append, poll=0.05):
            inside.set()

    thread = threading.Thread(target=second)
    thread.start()
    wait_until(lambda: told)
    assert told == [f"waiting for another MESA Lab job (pid {holder.pid}: holder test) to finish"]
    time.sleep(0.3)
    assert not inside.is_set() and not machine_lock.is_free()
    holder.stdin.close()
    thread.join(30)
    assert inside.is_set() and machine_lock.is_free()


def test_a_heavy_cli_command_waits_for_the_apps_job(holder):
    cli = subprocess.Popen([sys.executable, "-m", "mesa", "attack", "--data", "synthetic:50"], cwd=ROOT,
                           stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    first = cli.stderr.readline()
    assert f"waiting for another MESA Lab job (pid {holder.pid}: holder test) to finish" in first
    assert cli.poll() is None
    holder.stdin.close()
    assert cli.wait(60) == 2 and "synthetic:50" in cli.stderr.read()  # its turn came: then the data is refused


def counting(on_progress, should_stop):
    for step in range(1, 4):
        on_progress(Progress("count", step, 3))
    return {"counted": 3}


def test_an_app_job_waits_for_a_cli_command_and_can_be_cancelled_meanwhile(holder):
    q = JobQueue()
    job, dropped = q.submit("count", "count", counting), q.submit("count", "count 2", counting)
    wait_until(lambda: job.status == WAITING)
    assert f"pid {holder.pid}: holder test" in job.waiting_for and q.active() == [job, dropped]
    dropped.cancel()
    holder.stdin.close()
    assert q.wait(job, 30).status == DONE and q.wait(dropped, 30).status == CANCELLED


def test_finished_jobs_are_listed_after_a_restart():
    q = JobQueue()
    done = q.wait(q.submit("count", "count to three", counting))
    assert done.status == DONE
    again = JobQueue()
    (old,) = again.jobs()
    assert (old.id, old.status, old.label, old.latest.stage, old.fraction) == (done.id, DONE, "count to three", "count", 1.0)
    assert again.submit("count", "next", counting).id == done.id + 1


WORK = """
import os
import time
from mesa import atomic
from mesa.progress import Progress

def work(run, on_progress, should_stop):
    on_progress(Progress("train", 2, 10))
    atomic.write_json(run + "/metrics.json", {"asr": 1.0})
    open(run + "/.model.pt.abcd1234.tmp", "w").write("half a model")  # an atomic write cut short
    print(os.getpid(), flush=True)
    while True:
        time.sleep(0.1)
"""
SERVER = """
import sys, time
from functools import partial
sys.path.insert(0, r"{helpers}")
from cut_short import work
from mesa.lab.jobs.queue import JobQueue

JobQueue(child_process=True).submit("attack", "attack to be cut short", partial(work, r"{run}"), r"{run}")
time.sleep(600)
"""


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_a_job_cut_short_by_a_server_restart_shows_as_interrupted_and_its_run_is_clean(tmp_path):
    """The server runs its job in the job process, as the app does; killing the server kills the job."""
    (tmp_path / "cut_short.py").write_text(WORK)
    run = runs_root() / "a-run"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    stale = runs_root() / ".half-run.abcd1234"  # save_run's temporary folder, left by an earlier crash
    stale.mkdir()
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(run=run, helpers=tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    worker = int(server.stdout.readline())  # the job process writes its pid once it is working
    assert worker != server.pid
    wait_until(lambda: history.restore(history.folder(), set())[0].get("stage") == "train")
    (record,) = history.restore(history.folder(), set())
    assert record["status"] == RUNNING and record["pid"] == server.pid
    assert JobQueue().jobs() == []  # a live server's unfinished job is that server's to show
    server.send_signal(signal.SIGKILL)
    server.wait(30)
    wait_until(lambda: gone(worker), 10)  # the job process died with its server

    (job,) = JobQueue().jobs()
    assert job.status == INTERRUPTED and job.done and "run it again" in job.error
    assert job.label == "attack to be cut short" and job.latest.stage == "train" and job.fraction == 0.2
    assert machine_lock.is_free()  # the kernel let go of the dead server's lock
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "metrics.json"]
    assert not stale.exists() and list_runs() == [run]
    assert JobQueue().jobs()[0].status == INTERRUPTED  # recorded so: a second restart agrees
