"""Run folders: every trained model saved with its config, weights, trigger, metrics and history.

A run folder is created whole (written to a hidden temporary folder, then renamed), and each
file later added to it (MESA results, defenses) is written atomically, so a crash never leaves
a half-written run; the temporary folders and files a kill leaves are removed when the runs folder
is next listed or the run loaded. Loading uses `torch.load(weights_only=True)`: no code runs from a
file, and a config.json of the wrong shape is refused in one line.
"""
import io
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from numbers import Real
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mesa import atomic
from mesa.errors import MesaError
from mesa.models import Classifier, build_model

RUN_KIND = "mesa-lab-run"
TORCHSCRIPT = "torchscript"  # config["model"] of an imported TorchScript program, kept in the run as model.ts
NO_CODE = "MESA_NO_CODE"  # set to 1 by the app server (and so its job processes): never run a run's program


def runs_root(path=None) -> Path:
    """The runs folder: the given one, else $MESA_RUNS, else ./runs."""
    return Path(path or os.environ.get("MESA_RUNS", "runs"))


@dataclass
class Run:
    path: Path
    config: dict
    model: Classifier
    trigger: torch.Tensor | None
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)

    @property
    def target(self) -> int | None:
        """The backdoor's class when known (an imported model may not say; see stages.resolve_target)."""
        return self.config.get("target")


def run_name(config: dict) -> str:
    data = config["data"].split(":")[0]  # folder:PATH, synthetic:N
    trigger = re.sub(r"[^A-Za-z0-9]+", "", (config.get("trigger") or "clean").split("/")[-1])[:20]
    return f"{data}-{config['model']}-{trigger}-t{config.get('target', 'x')}-{time.strftime('%Y%m%d-%H%M%S')}"


def save_run(root, config: dict, model, trigger=None, metrics=None, history=None, name=None, files=None) -> Path:
    """Write a new run folder atomically and return its path. `files`: {name: bytes or tensors} to add."""
    root = runs_root(root)
    root.mkdir(parents=True, exist_ok=True)
    name = name or run_name(config)
    final = root / name
    suffix = 1
    while final.exists():
        suffix += 1
        final = root / f"{name}-{suffix}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=atomic.temp_prefix(final.name)))
    try:
        atomic.write_json(tmp / "config.json", {"kind": RUN_KIND, "version": 1, **config})
        atomic.write_torch(tmp / "model.pt", {k: v.detach().cpu() for k, v in model.state_dict().items()})
        if trigger is not None:
            atomic.write_torch(tmp / "trigger.pt", trigger.detach().cpu())
        atomic.write_json(tmp / "metrics.json", metrics or {})
        atomic.write_json(tmp / "history.json", history or [])
        for file, content in (files or {}).items():
            (atomic.write_bytes if isinstance(content, bytes) else atomic.write_torch)(tmp / file, content)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_tensor_file(path: Path, what: str, sha256: str | None = None):
    """torch.load with weights_only=True, turning every failure into a clear MesaError; `sha256`:
    the hash its set's manifest recorded (mesa/lab/storage/artifacts.py), checked first."""
    if not path.is_file():
        raise MesaError(f"{what} is missing: {path}")
    data = path.read_bytes()
    if sha256 is not None and atomic.sha256(data) != sha256:
        raise MesaError(f"{what} {path} does not match the results saved with it (a save cut short?): run that step again")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:
        raise MesaError(f"{what} {path} is corrupt or not a MESA Lab file ({type(e).__name__})") from None


def read_json(path: Path, what: str, default=None):
    if not path.is_file():
        if default is not None:
            return default
        raise MesaError(f"{what} is missing: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MesaError(f"{what} {path} is corrupt ({e})") from None


def load_run(path, device="cpu") -> Run:
    path = Path(path)
    if not path.is_dir():
        raise MesaError(f"run {path} does not exist (runs are folders under runs/)")
    sweep_temp(path)
    config = check_config(read_json(path / "config.json", "run config"), path)
    state = load_tensor_file(path / "model.pt", "model weights")
    if not isinstance(state, dict):
        raise MesaError(f"model weights {path / 'model.pt'} are not a state dict")
    model = build_run_model(path, config)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise MesaError(f"model weights in {path} do not fit a {config['model']} model: {str(e).splitlines()[0]}") from None
    trigger = load_tensor_file(path / "trigger.pt", "trigger") if (path / "trigger.pt").exists() else None
    return Run(path, config, model.to(device).eval(), trigger,
               read_json(path / "metrics.json", "metrics", {}), read_json(path / "history.json", "history", []))


def build_run_model(path, config: dict) -> Classifier:
    """The run's network, untrained: built by name, or the TorchScript program kept in the run."""
    if config["model"] != TORCHSCRIPT:
        return build_model(config["model"], config["num_classes"], config["mean"], config["std"])
    if os.environ.get(NO_CODE) == "1":
        raise MesaError(f"run {Path(path).name} holds a TorchScript program, which is code: the app never runs it; "
                        "use it from the command line, where it was imported with --trust-code")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            body = torch.jit.load(Path(path) / "model.ts", map_location="cpu")
    except Exception as e:  # a missing or damaged program: many error types
        raise MesaError(f"TorchScript program {Path(path) / 'model.ts'} is missing or corrupt ({type(e).__name__})") from None
    return Classifier(body, config["mean"], config["std"])


_FIELDS = {"data": str, "model": str, "num_classes": int, "mean": list, "std": list}
_OPTIONAL = {"target": int, "trigger": str, "location": str, "classes": list}


def check_config(config, path) -> dict:
    """The run's config.json, refused in one line when a key the loaders use is missing or of the wrong type."""
    if not isinstance(config, dict) or config.get("kind") != RUN_KIND:
        raise MesaError(f"{path} is not a MESA Lab run (its config.json has no kind={RUN_KIND!r})")
    for key, kind in {**_FIELDS, **_OPTIONAL}.items():
        value = config.get(key)
        if (value is None and key in _OPTIONAL) or (isinstance(value, kind) and not isinstance(value, bool)):
            continue
        what = "lacks" if key not in config else f"has a {type(value).__name__} for"
        raise MesaError(f"run config {path / 'config.json'} {what} {key!r} (expected {kind.__name__})")
    n = config["num_classes"]
    if not 2 <= n <= 100_000 or len(config.get("classes") or [None] * n) != n:
        raise MesaError(f"run config {path / 'config.json'}: num_classes {n} does not fit its class names")
    if not all(len(config[k]) == 3 and all(isinstance(v, Real) for v in config[k]) for k in ("mean", "std")):
        raise MesaError(f"run config {path / 'config.json'}: mean and std must be 3 numbers each")
    if config.get("target") is not None and not 0 <= config["target"] < n:
        raise MesaError(f"run config {path / 'config.json'}: target {config['target']} out of range 0..{n - 1}")
    return config


def sweep_temp(folder: Path) -> None:
    """Remove the temporary files and folders that killed saves left in a folder (and its mesa/);
    a live save's are kept (atomic.is_stale)."""
    for place in (folder, folder / "mesa"):
        for p in place.iterdir() if place.is_dir() else []:
            if p.name.startswith(".") and atomic.is_stale(p):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def list_runs(root=None) -> list[Path]:
    root = runs_root(root)
    if not root.is_dir():
        return []
    sweep_temp(root)
    return sorted((p for p in root.iterdir() if (p / "config.json").is_file() and not p.name.startswith(".")),
                  key=lambda p: p.stat().st_mtime, reverse=True)
