"""Shared by the benchmarks: where the real CIFAR-10 copy is, and a record of the machine."""
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
