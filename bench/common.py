"""Shared by the benchmarks: where the real CIFAR-10 copy is, a record of the machine, and where its CPU went."""
import os
import platform
import subprocess
import tarfile
import time
from pathlib import Path

import torch

SHARED_TARBALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"
CIFAR_FOLDER = Path(os.environ.get("CIFAR10_JPG", Path.home() / ".cache" / "cifar10-jpg"))


def cifar10_folder() -> Path:
    """The image-folder copy of CIFAR-10, extracted from ../shared on first use."""
    if not (CIFAR_FOLDER / "train").is_dir():
        if not SHARED_TARBALL.is_file():
            raise SystemExit(f"no CIFAR-10 copy at {CIFAR_FOLDER} and no {SHARED_TARBALL} to extract")
        CIFAR_FOLDER.mkdir(parents=True, exist_ok=True)
        with tarfile.open(SHARED_TARBALL) as tar:
            tar.extractall(CIFAR_FOLDER, filter="data")
    return CIFAR_FOLDER


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "date": time.strftime("%Y-%m-%d"), "commit": commit}


def cpu_seconds(server: int) -> dict:
    """CPU seconds used so far by the server process, its children (the job process) and every chromium
    process with the chromium processes they reaped, read from /proc: where the 2 cores go."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {"server": 0.0, "job": 0.0, "browsers": 0.0}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, fields = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        pid, ppid, own = int(stat.parent.name), int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
        reaped = (int(fields[13]) + int(fields[14])) / tick  # its children that ended (a closed tab's renderer)
        who = "server" if pid == server else "job" if ppid == server else "browsers" if "chrom" in name else None
        if who:
            used[who] += own + (reaped if who == "browsers" else 0.0)
    return used
