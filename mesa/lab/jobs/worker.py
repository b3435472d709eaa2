"""The app's jobs run in one long-lived child process, not in a thread of the server: a training loop
in the server's own process shares its interpreter lock with every session's page script, and with
ten students clicking, both crawled (docs/RESULTS.md, "ten sessions"). The child keeps its data cache
between jobs; progress, the result and errors come back over a queue, pickled by plain pickle (torch's
own queue pickler would move every snapshot tensor to shared memory); a cancel is one shared event.

The child dies with the server (Linux: the kernel kills it when its parent goes; elsewhere a thread
checks every second), so a killed server never leaves a job writing into a run."""
import ctypes
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback

from mesa.errors import MesaError

_SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked threads or torch state


class WorkerCrash(Exception):
    """The work raised something other than a MesaError in the child; the message holds its traceback."""


def job_threads() -> int:
    """Torch threads of the job process: $MESA_JOB_THREADS, else all cores but one, which is left to
    the server's pages (on 2 cores with ten sessions clicking, the demo got further with 1 thread than
    with 2: docs/RESULTS.md, "ten browser sessions")."""
    return int(os.environ.get("MESA_JOB_THREADS") or max(1, (os.cpu_count() or 2) - 1))


def die_with_parent(parent: int) -> None:
    """End this child process when `parent` dies: the kernel kills it at once on Linux, else a
    thread notices within a second (also the sweep's workers: mesa/lab/sweep/run.py)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    threading.Thread(target=_watch, args=(parent,), name="watch-parent", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _serve(tasks, events, stop, parent: int, threads: int) -> None:
    """The child's loop: unpickle a work, run it, report back; None ends the loop."""
    die_with_parent(parent)
    import torch
    torch.set_num_threads(threads)
    import mesa.lab.jobs.tasks  # noqa: F401 - the engine imported before the first job, not during it
    while (payload := tasks.get()) is not None:
        def on_progress(p):
            events.put(("progress", pickle.dumps(p)))

        try:
            events.put(("done", pickle.dumps(pickle.loads(payload)(on_progress, stop.is_set))))
        except MesaError as e:
            events.put(("mesa-error", str(e)))
        except BaseException as e:  # noqa: BLE001 - a bug or an out-of-memory: report it, keep serving
            events.put(("crash", f"{type(e).__name__}: {e}\n\n{traceback.format_exc(limit=-3)}"))


class Worker:
    """One child process, started ahead of the first job (or by it) and restarted if it dies; jobs run
    one at a time (the queue's worker thread is the only caller)."""

    def __init__(self, threads: int | None = None):
        self._process = None
        self._threads = threads or job_threads()

    def start(self) -> None:
        """Start the child now if it is not running (it imports torch and the engine, ready for a job)."""
        if self._process is not None and self._process.is_alive():
            return
        self._tasks, self._events, self._stop = _SPAWN.Queue(), _SPAWN.Queue(), _SPAWN.Event()
        self._process = _SPAWN.Process(target=_serve, args=(self._tasks, self._events, self._stop, os.getpid(), self._threads),
                                       name="mesa-job-worker", daemon=True)
        self._process.start()

    def run(self, work, on_progress, should_stop, poll: float = 0.2):
        """Run `work(on_progress, should_stop)` in the child and return its result; a MesaError in the
        child is raised here as one, anything else as a WorkerCrash with the child's traceback."""
        try:
            payload = pickle.dumps(work)
        except Exception as e:  # a closure or lambda: the job must be built from top-level functions
            raise WorkerCrash(f"this job cannot be sent to the job process ({type(e).__name__}: {e})") from e
        self.start()
        self._stop.clear()
        self._tasks.put(payload)
        while True:
            if should_stop():
                self._stop.set()
            try:
                kind, value = self._events.get(timeout=poll)
            except queue.Empty:
                if not self._process.is_alive():
                    code = self._process.exitcode
                    self._process = None
                    raise WorkerCrash(f"the job process died (exit code {code}); out of memory? run it again")
                continue
            if kind == "progress":
                on_progress(pickle.loads(value))
            elif kind == "done":
                return pickle.loads(value)
            elif kind == "mesa-error":
                raise MesaError(value)
            else:
                raise WorkerCrash(value)
