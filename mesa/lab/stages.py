"""MESA's stages on a saved run: search, baseline, defend, detect. Each loads the run and its data,
uses the paper's split of the test set (80% the defender's, 20% held out), runs the engine and
saves its results into the run folder. The CLI and the app call these."""
import copy
from dataclasses import dataclass, replace

import torch

from mesa.lab import artifacts
from mesa.method.baseline import BaselineConfig, pixel_sgd_triggers
from mesa.method.census import COLOR_DEFAULT, ENUMERABLE, Census, CensusConfig, closure, summarize, take_census
from mesa.data import ImageData, defense_split, load_data
from mesa.method.defense import DefenseConfig, defend
from mesa.method.detection import DetectionConfig, detect, with_census
from mesa.device import resolve_device
from mesa.errors import MesaError
from mesa.progress import ProgressFn, ignore
from mesa.lab.runs import Run, load_run
from mesa.lab.runs import load_tensor_file
from mesa.method.search import SearchConfig, per_trigger_asr, search
from mesa.method.triggers import parse_location


@dataclass
class Workspace:
    """A loaded run with its data on the device and the defense split."""
    run: Run
    data: ImageData
    modeling: tuple  # (images, labels): the defender's 80%
    held_out: tuple  # (images, labels): the 20% for evaluation


def open_run(run_path, device="auto", data: ImageData | None = None, target: int | None = None) -> Workspace:
    """`target`: the class to work toward when the run does not know its backdoor's (an imported model)."""
    device = resolve_device(device)
    run = load_run(run_path, device)
    if run.target is None:  # in memory only: the given class, else the suspect of a saved detection
        found = artifacts.load_detection(run.path) if target is None else None
        run.config["target"] = found["suspect"] if found else target
        if run.target is not None and not 0 <= run.target < run.config["num_classes"]:
            raise MesaError(f"target class {run.target} out of range 0..{run.config['num_classes'] - 1}")
    data = (data or load_data(run.config["data"])).to(device)
    mx, my, hx, hy = defense_split(data.test_images, data.test_labels)
    return Workspace(run, data, (mx, my), (hx, hy))


def _trigger_size(ws: Workspace, default: int) -> int:
    """Model triggers of the attacker's size when the run knows its trigger."""
    return ws.run.trigger.shape[-1] if ws.run.trigger is not None else default


def need_target(ws: Workspace) -> int:
    if ws.run.target is None:
        raise MesaError(f"run {ws.run.path} does not know its backdoor's class (an imported model): "
                        "run `detect` first, or pass --target")
    return ws.run.target


def run_search(ws: Workspace, cfg: SearchConfig, target: int | None = None, num_samples: int = 256,
               on_progress: ProgressFn = ignore, should_stop=lambda: False) -> dict:
    target = need_target(ws) if target is None else target
    cfg = replace(cfg, trigger_size=_trigger_size(ws, cfg.trigger_size), location=_location(ws, cfg.location))
    results = search(ws.run.model, *ws.modeling, target, cfg, ws.data.num_classes, *ws.held_out,
                     num_samples=num_samples, on_progress=on_progress, should_stop=should_stop)
    artifacts.save_search(ws.run.path, results, cfg, target, cfg.hidden_for(ws.data.num_classes))
    return {"run": str(ws.run.path), "target": target, "betas": [r.summary() for r in results]}


def run_baseline(ws: Workspace, cfg: BaselineConfig, on_progress: ProgressFn = ignore, should_stop=lambda: False) -> dict:
    target = need_target(ws)
    cfg = replace(cfg, trigger_size=_trigger_size(ws, cfg.trigger_size), location=_location(ws, cfg.location))
    triggers, curve = pixel_sgd_triggers(ws.run.model, *ws.modeling, target, cfg, on_progress, should_stop)
    asr = per_trigger_asr(ws.run.model, *ws.held_out, triggers, target, location=cfg.location)
    artifacts.save_baseline(ws.run.path, triggers, asr, cfg, curve)
    return {"run": str(ws.run.path), "restarts": len(triggers), "mean_asr": asr.mean().item(),
            "min_asr": asr.min().item()}


def _census_betas(ws: Workspace) -> list[float]:
    """The search's betas (the census counts triggers at or above each), else the paper's."""
    meta = artifacts.read_search_meta(ws.run.path)
    return [b["beta"] for b in meta["betas"]] if meta else [0.5, 0.8, 0.9]


def _location(ws: Workspace, spec: str | None) -> str:
    """Where a stage stamps triggers: as asked, else where the run's attack did (random by default)."""
    return spec if spec is not None else ws.run.config.get("location") or "random"


def _census_at(ws: Workspace, cfg: CensusConfig) -> CensusConfig:
    """The census stamps where the run's attack did unless told otherwise (a list: JSON round-trips it)."""
    at = parse_location(_location(ws, None))
    return cfg if cfg.location is not None or at is None else replace(cfg, location=list(at))


def _census_settings(ws: Workspace, cfg: CensusConfig) -> dict:
    cfg = _census_at(ws, cfg)
    return {**cfg.to_dict(), "trigger_size": cfg.trigger_size or _trigger_size(ws, 3), "target": ws.run.target}


def census_of(ws: Workspace, model, tag: str, cfg: CensusConfig) -> Census:
    """Take the census of `model` on the held-out split and save it in the run under `tag`."""
    cfg = _census_at(ws, cfg)
    settings = _census_settings(ws, cfg)
    census = take_census(model, *ws.held_out, ws.data.num_classes, ws.run.target, cfg, ws.run.trigger,
                         settings["trigger_size"])
    artifacts.save_census(ws.run.path, tag, census, summarize(census, _census_betas(ws)), settings)
    return census


def saved_census(ws: Workspace, tag: str, cfg: CensusConfig) -> Census | None:
    """A census saved under `tag` with the same settings, else None (changed settings redo it)."""
    found = artifacts.load_census(ws.run.path, tag, cfg.family)
    return found["census"] if found and found["settings"] == _census_settings(ws, cfg) else None


def _floor_asr(ws: Workspace, cfg: CensusConfig):
    """The clean model's census (tag "floor"), when a benchmark saved one beside the run."""
    floor = saved_census(ws, "floor", cfg)
    return floor.asr if floor is not None else None


def census_report(ws: Workspace, before: Census, after: Census, cfg: CensusConfig) -> dict:
    betas = _census_betas(ws)
    return {"before": summarize(before, betas), "after": summarize(after, betas),
            "closure": closure(before.asr, after.asr, _floor_asr(ws, cfg))}


def defended_model(ws: Workspace, method: str):
    """The defended model saved by `defend --method METHOD` (pixel-sgd keeps one per restart: none)."""
    path = ws.run.path / artifacts.FOLDER / f"{artifacts.method_file(method)}.pt"
    if not path.is_file():
        saved = sorted(artifacts.load_defenses(ws.run.path))
        raise MesaError(f"no defended model saved for {method!r} in {ws.run.path} (saved: {', '.join(saved) or 'none'}; "
                        "pixel-sgd keeps none, its census per restart is taken during the defense)")
    model = copy.deepcopy(ws.run.model)
    try:
        model.load_state_dict(load_tensor_file(path, "defended model"))
    except RuntimeError:
        raise MesaError(f"defended model {path} does not fit the run's model") from None
    return model.eval()


def run_census(ws: Workspace, cfg: CensusConfig, defense: str | None = None) -> dict:
    """The census of the run's model (tag "before") or of a saved defense's model, with the closure
    of the defense against the before census."""
    if ws.run.target is None:
        raise MesaError(f"run {ws.run.path} has no target class: run `detect` first or pass --target")
    before = saved_census(ws, "before", cfg) or census_of(ws, ws.run.model, "before", cfg)
    if defense is None:
        return {"run": str(ws.run.path), "tag": "before", **summarize(before, _census_betas(ws))}
    if defense == "pixel-sgd":
        return {"run": str(ws.run.path), "tag": artifacts.method_file(defense), **_pixel_sgd_census(ws, cfg)}
    tag = artifacts.method_file(defense)
    after = census_of(ws, defended_model(ws, defense), tag, cfg)
    report = census_report(ws, before, after, cfg)
    return {"run": str(ws.run.path), "tag": tag, **report["after"], "closure": report["closure"],
            "before": report["before"]}


def _pixel_sgd_census(ws: Workspace, cfg: CensusConfig) -> dict:
    """pixel-sgd keeps no defended model (one per restart): its census is the one taken during the defense."""
    saved = artifacts.load_defenses(ws.run.path).get("pixel-sgd")
    report = (saved or {}).get("census")
    if report is None or report["after"]["family"] != cfg.family:
        raise MesaError(f"no {cfg.family} census of the pixel-sgd defense in {ws.run.path}: its defended models are "
                        f"not kept, so run `defend --method pixel-sgd --census {cfg.family}` again")
    return {**report["after"], "closure": report["closure"], "before": report["before"],
            "restarts": report.get("restarts", [])}


def _inspector(ws: Workspace, cfg: DefenseConfig, census_cfg: CensusConfig):
    """Census of each defended model (per restart for pixel-sgd), saved and reported beside its ASR."""
    k = census_cfg.trigger_size or _trigger_size(ws, 3)
    if census_cfg.family == "binary" and census_cfg.samples is None and k > ENUMERABLE:
        census_cfg = replace(census_cfg, samples=COLOR_DEFAULT)  # too many patterns: a seeded sample
    tag = artifacts.method_file(cfg.method)
    before = []  # taken with the first defended model, so a defense that cannot start costs nothing

    def inspect(model, restart):
        if not before:
            before.append(saved_census(ws, "before", census_cfg) or census_of(ws, ws.run.model, "before", census_cfg))
        after = census_of(ws, model, tag if restart is None else f"{tag}-{restart + 1}", census_cfg)
        return census_report(ws, before[0], after, census_cfg)

    return inspect


def _census_of_result(result: dict) -> dict | None:
    """The defense's census: before, after (for pixel-sgd its worst restart, the most triggers left
    open) and the closure; per-restart reports kept beside."""
    if "inspection" in result:
        return result.pop("inspection")
    reports = [r.pop("inspection") for r in result.get("restarts", []) if "inspection" in r]
    if not reports:
        return None
    worst = max(reports, key=lambda r: (r["after"].get("open", 0), r["after"].get("worst_asr", 0)))
    closures = [r["closure"] for r in reports if r["closure"] is not None]
    return {**worst, "restarts": [{"after": r["after"], "closure": r["closure"]} for r in reports],
            "mean_closure": sum(closures) / len(closures) if closures else None}


def run_defense(ws: Workspace, cfg: DefenseConfig, on_progress: ProgressFn = ignore, should_stop=lambda: False,
                census: CensusConfig | None = CensusConfig()) -> dict:
    run = ws.run
    need_target(ws)
    cfg = replace(cfg, location=_location(ws, cfg.location))
    found = artifacts.load_search(run.path, ws.data.train_images.device)
    if found and found["target"] != run.target:
        raise MesaError(f"the saved search targets class {found['target']}, the run's backdoor class {run.target}; "
                        "search again without --target")
    baseline = artifacts.load_baseline(run.path)
    noise = found["config"]["noise"] if found else "uniform"
    result, defended = defend(run.model, run.trigger, run.target, ws.modeling, ws.held_out, cfg,
                              {b: v["generator"] for b, v in found["betas"].items()} if found else None,
                              baseline["triggers"] if baseline else None, noise, on_progress, should_stop,
                              _inspector(ws, cfg, census) if census is not None else None)
    report = _census_of_result(result)
    if report is not None:
        result["census"] = report
    if found and defended is not None and run.trigger is None:  # no planted trigger to measure: MESA's own samples
        result["samples_asr"] = _samples_asr(ws, found, defended, cfg.location)
    artifacts.save_defense(run.path, result, defended)
    summary = {"run": str(run.path), "method": cfg.method, "before": result["before"], "after": result["after"],
               "worst_asr": result["worst_asr"], "seconds": result["seconds"]}
    if report is not None:
        summary["census"] = {k: report[k] for k in ("before", "after", "closure")}
    if "samples_asr" in result:
        summary["samples_asr"] = result["samples_asr"]
    return summary


def _samples_asr(ws: Workspace, found: dict, defended, location: str) -> dict:
    """Mean held-out ASR of MESA's own samples (every beta's) on the model before and after the
    defense: the measure that needs no planted trigger."""
    samples = torch.cat([v["samples"][:64] for v in found["betas"].values()])
    return {when: per_trigger_asr(model, *ws.held_out, samples, ws.run.target, max_images=64,
                                  location=location).mean().item()
            for when, model in (("before", ws.run.model), ("after", defended))}


def run_detection(ws: Workspace, cfg: DetectionConfig, on_progress: ProgressFn = ignore, should_stop=lambda: False) -> dict:
    cfg = replace(cfg, location=_location(ws, cfg.location))
    result = (detect(ws.run.model, *ws.modeling, ws.data.num_classes, cfg, *ws.held_out, on_progress, should_stop)
              if cfg.search else {"config": cfg.to_dict(), "per_class": [], "suspect": None, "backdoor_detected": False})
    if cfg.census_images:
        at = parse_location(cfg.location)
        census_cfg = CensusConfig(images=cfg.census_images, location=list(at) if at else None)
        census = take_census(ws.run.model, *ws.held_out, ws.data.num_classes, None, census_cfg, k=_trigger_size(ws, 3))
        result = with_census(result, summarize(census)["open_per_class"], len(census.names))
    artifacts.save_detection(ws.run.path, result)
    return {"run": str(ws.run.path), **result}
