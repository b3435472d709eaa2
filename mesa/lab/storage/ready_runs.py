"""Ready runs shipped with the app (assets/runs), so a fresh `streamlit run app.py` has every page
filled at once: a backdoored CIFAR-10 model searched, defended and censused on the shipped CIFAR-10
test images (bench/cifar_classroom.py), which opens first, and one on the embedded data, made by the
classroom demo's own pipeline (`python -m mesa demo --ship`); each with its MESA search, pixel-SGD
baseline, defenses and census.

The app copies them into the user's runs folder on start (those not there yet), so stages rerun
on them write into the copy and the shipped files never change.
"""
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from mesa import atomic
from mesa.lab.pipeline import presets
from mesa.lab.storage import artifacts
from mesa.lab.jobs.tasks import pipeline_work
from mesa.progress import ProgressFn, ignore
from mesa.resources import resource
from mesa.lab.storage.runs import RUN_KIND, read_json, runs_root

SHIPPED = resource("runs")
DEMO = presets.CLASSROOM_DEMO
OPENS_FIRST = "ready-cifar10-"  # a fresh app opens on real CIFAR-10 images; the embedded run sits beside it
WEIGHTS = ("model.pt", "generator-", "defense-")  # state dicts, shipped in half precision


def shipped_runs(source: Path = SHIPPED) -> list[Path]:
    if not source.is_dir():
        return []
    return sorted(p for p in source.iterdir() if (p / "config.json").is_file()
                  and read_json(p / "config.json", "run config").get("kind") == RUN_KIND)


def install_ready_runs(root=None, source: Path = SHIPPED) -> list[Path]:
    """Copy each shipped run that the runs folder lacks (by name) into it, the CIFAR-10 one last, so
    it is the newest and a fresh app opens on it; returns the new copies.
    $MESA_READY_RUNS=0 turns this off (the tests do, to start from an empty folder)."""
    if os.environ.get("MESA_READY_RUNS", "1") == "0":
        return []
    root = runs_root(root)
    root.mkdir(parents=True, exist_ok=True)
    added = []
    for run in shipped_runs(source):
        final = root / run.name
        if final.exists():
            continue
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{run.name}."))
        try:
            shutil.copytree(run, tmp, dirs_exist_ok=True)
            os.rename(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            continue  # another session installed it meanwhile, or the folder is read-only: nothing lost
        added.append(final)
    now = time.time_ns()  # the newest run opens first: the copies keep their sources' times, so set them
    for i, path in enumerate(sorted(added, key=lambda p: p.name.startswith(OPENS_FIRST))):
        os.utime(path, ns=(now + i, now + i))
    return added


def halve_weights(run: Path) -> None:
    """Store the run's state dicts (model, generators, defended models) with float tensors in half
    precision (they load back into float32 models), and their new hashes in the stage JSONs that
    name them, so each stage's set still checks."""
    hashes = {}
    for f in run.rglob("*.pt"):
        if f.name.startswith(WEIGHTS):
            state = torch.load(f, map_location="cpu", weights_only=True)
            data = atomic.torch_bytes({k: v.half() if v.is_floating_point() else v for k, v in state.items()})
            atomic.write_bytes(f, data)
            hashes[f.name] = atomic.sha256(data)
    for f in (run / artifacts.FOLDER).glob("*.json"):
        meta = read_json(f, "stage result")
        named = meta.get("files") if isinstance(meta, dict) else None
        if isinstance(named, dict) and hashes.keys() & named.keys():
            atomic.write_json(f, {**meta, "files": {k: hashes.get(k, v) for k, v in named.items()}})


def make_ready_run(preset_name: str = DEMO, out: Path = SHIPPED, on_progress: ProgressFn = ignore) -> Path:
    """Run the preset's whole pipeline in a scratch folder and ship the finished run into `out`,
    replacing an older one of the same preset."""
    preset = presets.builtin()[preset_name]
    with tempfile.TemporaryDirectory() as scratch:
        attack = replace(presets.attack_config(preset), out=scratch)
        result = pipeline_work(attack, presets.search_config(preset),
                               presets.defense_configs(preset), presets.baseline_config(preset),
                               presets.census_config(preset))(on_progress, lambda: False)
        run = Path(result["run"])
        halve_weights(run)
        out.mkdir(parents=True, exist_ok=True)
        final = out / f"ready-{run.name.rsplit('-', 2)[0]}"
        if final.exists():
            shutil.rmtree(final)
        shutil.copytree(run, final)
    return final
