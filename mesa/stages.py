"""MESA's stages on a saved run: search, baseline, defend, detect. Each loads the run and its data,
uses the paper's split of the test set (80% the defender's, 20% held out), runs the engine and
saves its results into the run folder. The CLI and the app call these."""
from dataclasses import dataclass, replace

from . import artifacts
from .baseline import BaselineConfig, pixel_sgd_triggers
from .data import ImageData, defense_split, load_data
from .defense import DefenseConfig, defend
from .detection import DetectionConfig, detect
from .device import resolve_device
from .errors import MesaError
from .progress import ProgressFn, ignore
from .runs import Run, load_run
from .search import SearchConfig, per_trigger_asr, search


@dataclass
class Workspace:
    """A loaded run with its data on the device and the defense split."""
    run: Run
    data: ImageData
    modeling: tuple  # (images, labels): the defender's 80%
    held_out: tuple  # (images, labels): the 20% for evaluation


def open_run(run_path, device="auto", data: ImageData | None = None) -> Workspace:
    device = resolve_device(device)
    run = load_run(run_path, device)
    data = (data or load_data(run.config["data"])).to(device)
    mx, my, hx, hy = defense_split(data.test_images, data.test_labels)
    return Workspace(run, data, (mx, my), (hx, hy))


def _trigger_size(ws: Workspace, default: int) -> int:
    """Model triggers of the attacker's size when the run knows its trigger."""
    return ws.run.trigger.shape[-1] if ws.run.trigger is not None else default


def run_search(ws: Workspace, cfg: SearchConfig, target: int | None = None, num_samples: int = 256,
               on_progress: ProgressFn = ignore, should_stop=lambda: False) -> dict:
    target = ws.run.target if target is None else target
    cfg = replace(cfg, trigger_size=_trigger_size(ws, cfg.trigger_size))
    results = search(ws.run.model, *ws.modeling, target, cfg, ws.data.num_classes, *ws.held_out,
                     num_samples=num_samples, on_progress=on_progress, should_stop=should_stop)
    artifacts.save_search(ws.run.path, results, cfg, target, cfg.hidden_for(ws.data.num_classes))
    return {"run": str(ws.run.path), "target": target, "betas": [r.summary() for r in results]}


def run_baseline(ws: Workspace, cfg: BaselineConfig, on_progress: ProgressFn = ignore, should_stop=lambda: False) -> dict:
    target = ws.run.target
    cfg = replace(cfg, trigger_size=_trigger_size(ws, cfg.trigger_size))
    triggers, curve = pixel_sgd_triggers(ws.run.model, *ws.modeling, target, cfg, on_progress, should_stop)
    asr = per_trigger_asr(ws.run.model, *ws.held_out, triggers, target)
    artifacts.save_baseline(ws.run.path, triggers, asr, cfg, curve)
    return {"run": str(ws.run.path), "restarts": len(triggers), "mean_asr": asr.mean().item(),
            "min_asr": asr.min().item()}


def run_defense(ws: Workspace, cfg: DefenseConfig, on_progress: ProgressFn = ignore, should_stop=lambda: False) -> dict:
    run = ws.run
    if run.trigger is None:
        raise MesaError(f"run {run.path} has no trigger.pt: nothing to measure the defense against")
    found = artifacts.load_search(run.path, ws.data.train_images.device)
    if found and found["target"] != run.target:
        raise MesaError(f"the saved search targets class {found['target']}, the run's backdoor class {run.target}; "
                        "search again without --target")
    baseline = artifacts.load_baseline(run.path)
    noise = found["config"]["noise"] if found else "uniform"
    result, defended = defend(run.model, run.trigger, run.target, ws.modeling, ws.held_out, cfg,
                              {b: v["generator"] for b, v in found["betas"].items()} if found else None,
                              baseline["triggers"] if baseline else None, noise, on_progress, should_stop)
    artifacts.save_defense(run.path, result, defended)
    return {"run": str(run.path), "method": cfg.method, "before": result["before"], "after": result["after"],
            "worst_asr": result["worst_asr"], "seconds": result["seconds"]}


def run_detection(ws: Workspace, cfg: DetectionConfig, on_progress: ProgressFn = ignore, should_stop=lambda: False) -> dict:
    result = detect(ws.run.model, *ws.modeling, ws.data.num_classes, cfg, *ws.held_out, on_progress, should_stop)
    artifacts.save_detection(ws.run.path, result)
    return {"run": str(ws.run.path), **result}
