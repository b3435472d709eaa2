"""Job history in the runs folder (runs/.jobs/<id>.json, written atomically at each status change),
so a restarted server still lists the jobs it ran. A job that was unfinished when its server died
comes back as interrupted, and what it left half-made is swept: the hidden temporary files and
folders its atomic writes had not yet renamed (list_runs and the loaders never read those)."""
import os
import time
from pathlib import Path

from mesa import atomic
from mesa.lab.jobs import machine_lock
from mesa.lab.storage.runs import read_json, runs_root, sweep_temp

FOLDER = ".jobs"
INTERRUPTED = "interrupted"


def folder(root=None) -> Path:
    return runs_root(root) / FOLDER


def claim_id(path: Path, start: int) -> int:
    """The first id from `start` whose record file this call creates (O_EXCL), so two servers sharing
    a runs folder never both get one; in a read-only runs folder, `start`."""
    job_id = start
    while True:
        try:
            path.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path / f"{job_id}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return job_id
        except FileExistsError:
            job_id += 1
        except OSError:
            return job_id


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
    """Remove the temporary files an interrupted job left in its run, only while no job holds the
    machine (a running job's temporary files are live), and the stale temporary run folders."""
    sweep_temp(runs_root())
    if not machine_lock.is_free() or not run_path or not Path(run_path).is_dir():
        return
    for tmp in Path(run_path).rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
