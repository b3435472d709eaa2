"""Background jobs: one process-wide queue with one worker thread, so long stages (attack, search,
defense, ...) outlive a page rerun, a reload or a second browser tab, and never run two at once
(two trainings sharing 2 CPU cores would both crawl): each job also takes the machine's turn
(mesa/lab/jobs/machine_lock.py), so a CLI command and the app wait for each other. Each status change is
recorded in the runs folder (mesa/lab/jobs/history.py): a restarted server lists its past jobs, and a
job its death cut short as interrupted. The app's queue runs each job in a child process
(mesa/lab/jobs/worker.py), so training never competes with the pages for the server's interpreter lock.
No Streamlit here: the app only reads jobs.

A job is a function `work(on_progress, should_stop) -> result` (for the child process, a picklable one:
mesa/lab/jobs/tasks.py); the queue records its status, its last progress events, the latest image
snapshot, its result or its error message.
"""
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mesa.lab.jobs import history as job_history
from mesa.errors import MesaError
from mesa.lab.jobs.worker import Worker, WorkerCrash
from mesa.lab.jobs.machine_lock import machine_turn
from mesa.progress import Progress

QUEUED, WAITING, RUNNING = "queued", "waiting", "running"  # waiting: for another process's job
DONE, FAILED, CANCELLED, INTERRUPTED = "done", "failed", "cancelled", job_history.INTERRUPTED
FINISHED = (DONE, FAILED, CANCELLED, INTERRUPTED)
Work = Callable[[Callable[[Progress], None], Callable[[], bool]], object]


@dataclass
class Job:
    id: int
    kind: str  # "attack", "search", "defense", "demo", ...
    label: str  # what the user sees
    work: Work | None  # None for a job restored from the history
    run_path: str | None = None  # the run it works on, when it has one
    status: str = QUEUED
    events: deque = field(default_factory=lambda: deque(maxlen=2000))  # dicts: stage, step, total, epoch, values
    images: object = None  # the latest snapshot tensor (e.g. current trigger samples)
    images_stage: str = ""
    latest: Progress | None = None
    result: object = None
    error: str = ""
    waiting_for: str = ""  # while WAITING: who holds the machine
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    @property
    def fraction(self) -> float:
        p = self.latest
        return min(1.0, p.step / p.total) if p and p.total else 0.0

    def cancel(self) -> None:
        """Ask the job to stop at its next step; a queued job is dropped before it starts."""
        self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def summary(self) -> dict:
        """What the history keeps (no events, images or result: the run folder has the results)."""
        p = self.latest
        return {"id": self.id, "kind": self.kind, "label": self.label, "run_path": self.run_path,
                "status": self.status, "error": self.error, "created": self.created, "started": self.started,
                "finished": self.finished, "stage": p.stage if p else "", "step": p.step if p else 0,
                "total": p.total if p else 0}

    @classmethod
    def restored(cls, r: dict) -> "Job":
        job = cls(int(r["id"]), r.get("kind", "?"), r.get("label", ""), None, r.get("run_path"), r["status"],
                  error=r.get("error", ""), created=r.get("created", 0.0), started=r.get("started"),
                  finished=r.get("finished"))
        if r.get("stage"):
            job.latest = Progress(r["stage"], int(r.get("step", 0)), int(r.get("total", 0)))
        return job

    def record(self, p: Progress) -> None:
        self.latest = p
        self.events.append({"stage": p.stage, "step": p.step, "total": p.total, "epoch": p.epoch,
                            **{k: v for k, v in p.values.items() if isinstance(v, (int, float))}})
        if p.images is not None:
            self.images, self.images_stage = p.images.detach().cpu(), p.stage


class JobQueue:
    """FIFO of jobs run one at a time by a daemon worker thread, in that thread or (child_process) in
    the job process, which the thread starts at once; otherwise the thread starts on the first submit.
    The jobs recorded in `history` (default: the runs folder's) are listed from the start."""

    def __init__(self, keep: int = 50, history: Path | None = None, child_process: bool = False):
        self._history = history or job_history.folder()
        self._jobs: list[Job] = [Job.restored(r) for r in job_history.restore(self._history, {QUEUED, WAITING, RUNNING})]
        self._pending: deque[Job] = deque()
        self._next_id = max([j.id for j in self._jobs], default=0) + 1
        self._lock = threading.Condition()
        self._worker: threading.Thread | None = None
        self._keep = keep
        self._process = Worker() if child_process else None
        if self._process is not None:  # its start (torch's import) comes before the first job, not with it
            self._start_worker()

    def submit(self, kind: str, label: str, work: Work, run_path=None) -> Job:
        with self._lock:
            job_id = job_history.claim_id(self._history, self._next_id)  # unique across servers on one runs folder
            self._next_id = job_id + 1
            job = Job(job_id, kind, label, work, str(run_path) if run_path else None)
            self._jobs.append(job)
            self._pending.append(job)
            self._save(job)
            self._forget_old()
            self._start_worker()
            self._lock.notify()
        return job

    def jobs(self) -> list[Job]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._jobs))

    def get(self, job_id: int) -> Job | None:
        return next((j for j in self.jobs() if j.id == job_id), None)

    def active(self) -> list[Job]:
        """Queued and running jobs, oldest first (the running one leads)."""
        return [j for j in reversed(self.jobs()) if not j.done]

    def latest(self, kind: str | None = None, run_path=None) -> Job | None:
        for j in self.jobs():
            if (kind is None or j.kind == kind) and (run_path is None or j.run_path == str(run_path)):
                return j
        return None

    def wait(self, job: Job, timeout: float = 60.0) -> Job:
        """Block until the job finishes (tests and scripts; the app polls instead)."""
        end = time.time() + timeout
        while not job.done and time.time() < end:
            time.sleep(0.05)
        return job

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs if j.done]
        for j in finished[:max(0, len(finished) - self._keep)]:
            self._jobs.remove(j)
            job_history.forget(self._history, j.id)

    def _save(self, job: Job) -> None:
        job_history.save(self._history, job.summary())

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._loop, name="mesa-jobs", daemon=True)
            self._worker.start()

    def _loop(self) -> None:
        if self._process is not None:  # from this long-lived thread: the child dies with the thread that made it
            try:
                self._process.start()
            except Exception:  # noqa: BLE001 - the first job's run tries again, and its error says why
                pass
        while True:
            with self._lock:
                while not self._pending:
                    self._lock.wait()
                job = self._pending.popleft()
            self._run(job)

    def _run(self, job: Job) -> None:
        if job.should_stop():
            job.status, job.finished = CANCELLED, time.time()
            self._save(job)
            return

        def wait(message: str) -> None:
            job.status, job.waiting_for = WAITING, message
            self._save(job)

        saved = {"stage": None, "at": 0.0}

        def on_progress(p: Progress) -> None:  # the history follows each stage, and the steps every 2 s
            job.record(p)
            if p.stage != saved["stage"] or time.time() - saved["at"] > 2:
                saved.update(stage=p.stage, at=time.time())
                self._save(job)

        try:
            with machine_turn(f"MESA Lab app: {job.label}", wait, job.should_stop):
                job.status, job.started, job.waiting_for = RUNNING, time.time(), ""
                self._save(job)
                if self._process is None:
                    job.result = job.work(on_progress, job.should_stop)
                else:
                    job.result = self._process.run(job.work, on_progress, job.should_stop)
            job.status = CANCELLED if job.should_stop() else DONE
        except MesaError as e:
            job.error, job.status = str(e), CANCELLED if job.should_stop() else FAILED
        except WorkerCrash as e:  # the child's own report, its traceback included
            job.error, job.status = str(e), FAILED
        except Exception as e:  # a bug or an out-of-memory: keep the worker alive, show the cause
            job.error = f"{type(e).__name__}: {e}\n\n{traceback.format_exc(limit=-3)}"
            job.status = FAILED
        finally:
            job.finished = time.time()
            self._save(job)


_QUEUE: JobQueue | None = None
_QUEUE_LOCK = threading.Lock()


def job_queue() -> JobQueue:
    """The process-wide queue every session shares, its jobs run in the job process; made on first use
    (so it reads the runs folder that $MESA_RUNS names by then)."""
    global _QUEUE
    with _QUEUE_LOCK:
        if _QUEUE is None:
            _QUEUE = JobQueue(child_process=True)
        return _QUEUE

