"""Job history in the runs folder (runs/.jobs/<id>.json, written atomically at each status change),
so a restarted server still lists the jobs it ran. A job that was unfinished when its server died
comes back as interrupted, and what it left half-made is swept: the hidden temporary files and
folders its atomic writes had not yet renamed (list_runs and the loaders never read those)."""
import os
import re
import shutil
import time
from pathlib import Path

from mesa import atomic
from mesa.lab import machine_lock
from mesa.lab.runs import read_json, runs_root

FOLDER = ".jobs"
INTERRUPTED = "interrupted"
_RUN_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}$")  # save_run's temporary run folders (tempfile.mkdtemp)


def folder(root=None) -> Path:
    return runs_root(root) / FOLDER


def save(path: Path, record: dict) -> None:
    """Write one job's record; a read-only runs folder costs the history, never the job."""
    try:
        atomic.write_json(path / f"{record['id']}.json", {**record, "pid": os.getpid()})
    except OSError:
        pass


def forget(path: Path, job_id: int) -> None:
    (path / f"{job_id}.json").unlink(missing_ok=True)


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return int(pid) != os.getpid()


def restore(path: Path, unfinished: set[str]) -> list[dict]:
    """Every readable record, oldest first. An unfinished job whose server is gone is marked
    interrupted (and saved so); one whose server still runs (another app on this runs folder) is
    left out, as it is that server's to show."""
    records = []
    for file in sorted(path.glob("*.json")) if path.is_dir() else []:
        try:
            record = read_json(file, "job record")
            int(record["id"])
        except Exception:  # a foreign or damaged file: the history is a convenience, skip it
            continue
        if record.get("status") in unfinished:
            if _alive(record.get("pid")):
                continue
            record.update(status=INTERRUPTED, finished=time.time(),
                          error="the server stopped while this job was unfinished; run it again")
            save(path, record)
            sweep_leftovers(record.get("run_path"))
        records.append(record)
    return sorted(records, key=lambda r: int(r["id"]))


def sweep_leftovers(run_path) -> None:
    """Remove the temporary files an interrupted job left, only while no job holds the machine (a
    running job's temporary files are live)."""
    if not machine_lock.is_free():
        return
    root = runs_root()
    places = [Path(run_path)] if run_path and Path(run_path).is_dir() else []
    for place in places:
        for tmp in place.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)
    if root.is_dir():
        for tmp in root.iterdir():  # older than 5 minutes: not a quick `import` writing its run now
            if (tmp.is_dir() and tmp.name != FOLDER and _RUN_TEMP.match(tmp.name)
                    and time.time() - tmp.stat().st_mtime > 300):
                shutil.rmtree(tmp, ignore_errors=True)
