"""One heavy job at a time per machine, not per process: the app's job worker and every heavy CLI
command take turns on one file lock (fcntl.flock) under the cache root, since two torch jobs on a
small machine each run about 4.4x slower (docs/RESULTS.md). A job that finds the lock taken waits,
and says once who holds it: the holder writes its pid and label into the lock file.

flock locks belong to an open file, so they also exclude a second holder in the same process, and
the kernel drops them when the holder dies: a killed job never leaves the machine locked."""
import fcntl
import json
import os
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable

from mesa.data import cache_root
from mesa.errors import MesaError
from mesa.method.registry import heavy_commands


def lock_path() -> Path:
    return cache_root() / "machine-job.lock"


def holder(path: Path | None = None) -> str:
    """Who holds the lock, as 'pid N: label' (what its holder wrote; '?' while it writes)."""
    try:
        info = json.loads((path or lock_path()).read_text() or "{}")
        return f"pid {info['pid']}: {info['label']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid ?: starting"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def machine_turn(label: str, on_wait: Callable[[str], None] = lambda message: None,
                 should_stop: Callable[[], bool] = lambda: False, poll: float = 0.5):
    """Hold the machine's job lock for the body. While another job holds it, call on_wait(message)
    once and wait; raise MesaError when should_stop() turns true before our turn comes."""
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd):
            on_wait(f"waiting for another MESA Lab job ({holder(path)}) to finish")
            while not _try_lock(fd):
                if should_stop():
                    raise MesaError("cancelled while waiting for another MESA Lab job")
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "label": label, "since": time.time()}).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the file releases the lock


def is_free() -> bool:
    """True when no job holds the machine right now (a snapshot: it may be taken a moment later)."""
    path = lock_path()
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDONLY)
    try:
        return _try_lock(fd)
    finally:
        os.close(fd)


def cli_turn(command: str, argv: list[str], read_only: bool = False):
    """The CLI's turn for a heavy command (a light or read-only one, e.g. `sweep --table`, runs at
    once), the wait told on stderr. The CLI checks its arguments before (mesa/lab/cli/checks.py)."""
    if command not in heavy_commands() or read_only:
        return nullcontext()
    label = " ".join(["python -m mesa", *argv])[:200]
    return machine_turn(label, on_wait=lambda message: print(message, file=sys.stderr, flush=True))
