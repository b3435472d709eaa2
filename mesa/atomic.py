"""Write artifacts atomically: a crash mid-write never leaves a half-written file behind.

Temporary names carry the writer's pid (`.NAME.PID-XXXXXXXX`), so whoever finds one later can tell a
live write from one a kill left behind (`is_stale`)."""
import hashlib
import io
import json
import os
import re
import tempfile
import time
from pathlib import Path

import torch

_TEMP = re.compile(r"^\..+\.(?:(\d+)-)?[a-z0-9_]{8}(?:\.tmp)?$")  # ours; without a pid: older versions'


def temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}-"


def is_stale(path: Path, grace: float = 30.0) -> bool:
    """A temporary file or folder whose writer is gone (its pid dead and some seconds old), or that
    has not changed for an hour (an older version's, or a pid from another machine)."""
    found = _TEMP.match(path.name)
    if not found:
        return False
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False
    return age > 3600 or (age > grace and found[1] is not None and not pid_alive(int(found[1])))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: alive
        return True
    return True


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bytes(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def write_torch(path, obj) -> None:
    write_bytes(path, torch_bytes(obj))
