"""MESA's stages on a saved run: search, baseline, defend, detect, census. Each opens the run
(mesa/lab/storage/workspace.py: its data and the paper's split of the test set), runs the engine and saves
its results into the run folder. The CLI and the app call these."""
import copy
from dataclasses import replace

import torch

from mesa.lab.storage import artifacts
from mesa.lab.pipeline.search_coverage import search_coverage
from mesa.lab.pipeline.census_stage import census_betas, census_of, census_report, per_trigger_census, saved_census, take
from mesa.lab.storage.workspace import Workspace, need_target, open_run, stamp_location, trigger_size  # noqa: F401 - open_run: callers open runs through stages
from mesa.method import registry
from mesa.method.census import COLOR_DEFAULT, ENUMERABLE, MAX_SAMPLES, CensusConfig, summarize, take_census
from mesa.method.defense import DefenseConfig, DefenseInputs, defend
from mesa.method.detection import DetectionConfig, detect, with_census
from mesa.method.generator import GeneratorSet
from mesa.errors import MesaError
from mesa.progress import ProgressFn, ignore
from mesa.method.search import SearchConfig, per_trigger_asr, search
from mesa.method.triggers import parse_location


def run_search(ws: Workspace, cfg: SearchConfig, target: int | None = None, num_samples: int = 256,
               on_progress: ProgressFn = ignore, should_stop=lambda: False) -> dict:
    if not 1 <= num_samples <= MAX_SAMPLES:
        raise MesaError(f"samples per beta must be 1..{MAX_SAMPLES}, not {num_samples}")
    target = need_target(ws) if target is None else target
    cfg = replace(cfg, trigger_size=trigger_size(ws, cfg.trigger_size), location=stamp_location(ws, cfg.location))
    results = search(ws.run.model, *ws.modeling, target, cfg, ws.data.num_classes, *ws.held_out,
                     num_samples=num_samples, on_progress=on_progress, should_stop=should_stop)
    measured = search_coverage(ws.run.path, ws.run.config.get("trigger"), {r.beta: r.samples for r in results})
    for r in results:
        r.coverage = measured[r.beta]
    artifacts.save_search(ws.run.path, results, cfg, target, cfg.hidden_for(ws.data.num_classes))
    return {"run": str(ws.run.path), "target": target, "betas": [r.summary() for r in results]}


def run_baseline(ws: Workspace, cfg, on_progress: ProgressFn = ignore, should_stop=lambda: False) -> dict:
    """The stage of an inversion method that reverses a set of triggers (`gives` "triggers": the
    pixel-SGD baseline, a per-class reversal; `cfg`, its config, says which), saved as mesa/STAGE.json/.pt
    with each trigger's held-out ASR and what the method reports beside them."""
    entry = registry.inversion_for(cfg)
    target = need_target(ws) if entry.needs_target else ws.run.target
    cfg = _run_defaults(ws, cfg)
    triggers, extra = entry.run(ws.run.model, *ws.modeling, target, cfg, on_progress, should_stop)
    asr = (entry.measure or per_trigger_asr)(ws.run.model, *ws.held_out, triggers, target,
                                             location=getattr(cfg, "location", None))
    artifacts.save_baseline(ws.run.path, triggers, asr, cfg, extra, entry.stage)
    measured = asr[asr.isfinite()]
    reported = {k: v for k, v in extra.items() if not isinstance(v, (list, dict))}  # a detection's suspect, say
    count = "restarts" if "restarts" in cfg.__dataclass_fields__ else "triggers"
    return {"run": str(ws.run.path), "method": entry.name, count: len(triggers), "mean_asr": measured.mean().item(),
            "min_asr": measured.min().item(), **reported}


def _run_defaults(ws: Workspace, cfg):
    """The run's trigger size and stamping place, for a config that has those settings."""
    fields, changes = cfg.__dataclass_fields__, {}
    if "trigger_size" in fields:
        changes["trigger_size"] = trigger_size(ws, cfg.trigger_size)
    if "location" in fields:
        changes["location"] = stamp_location(ws, cfg.location)
    return replace(cfg, **changes)


def run_inversion(ws: Workspace, method: str, cfg, on_progress: ProgressFn = ignore, should_stop=lambda: False,
                  **options) -> dict:
    """Any registered inversion method's stage (the sweep runs each through this)."""
    entry = registry.inversion(method)
    if entry.gives == "generators":
        return run_search(ws, cfg, on_progress=on_progress, should_stop=should_stop, **options)
    return run_baseline(ws, cfg, on_progress, should_stop, **options)


def defended_model(ws: Workspace, method: str):
    """The defended model kept as `method` (artifacts.kept_models: METHOD, or METHOD-I for copy I of
    a per-trigger defense)."""
    state = artifacts.load_defended_state(ws.run.path, method)
    if state is None:
        kept = sorted(artifacts.kept_models(ws.run.path))
        raise MesaError(f"no defended model kept as {method!r} in {ws.run.path} (kept: {', '.join(kept) or 'none'})")
    model = copy.deepcopy(ws.run.model)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError):
        raise MesaError(f"the defended model of {method!r} in {ws.run.path} does not fit the run's model") from None
    return model.eval()


def run_census(ws: Workspace, cfg: CensusConfig, defense: str | None = None) -> dict:
    """The census of the run's model (tag "before") or of a saved defense's model, with the closure
    of the defense against the before census."""
    if ws.run.target is None:
        raise MesaError(f"run {ws.run.path} has no target class: run `detect` first or pass --target")
    if defense is not None and registry.is_per_trigger(defense):
        return {"run": str(ws.run.path), "tag": artifacts.method_file(defense), **per_trigger_census(ws, cfg, defense)}
    defended = defended_model(ws, defense) if defense is not None else None  # a missing defense: before any census
    before = saved_census(ws, "before", cfg) or census_of(ws, ws.run.model, "before", cfg)
    if defense is None:
        return {"run": str(ws.run.path), "tag": "before", **summarize(before, census_betas(ws))}
    tag = artifacts.method_file(defense)
    after = census_of(ws, defended, tag, cfg)
    report = census_report(ws, before, after, cfg)
    return {"run": str(ws.run.path), "tag": tag, **report["after"], "closure": report["closure"],
            "before": report["before"]}


def _inspector(ws: Workspace, cfg: DefenseConfig, census_cfg: CensusConfig, taken: list):
    """Census of each defended model (per trigger for a per-trigger defense), reported beside its ASR
    and kept in `taken` for the defense's save (they are one set with its weights)."""
    k = census_cfg.trigger_size or trigger_size(ws, 3)
    if census_cfg.family == "binary" and census_cfg.samples is None and k > ENUMERABLE:
        census_cfg = replace(census_cfg, samples=COLOR_DEFAULT)  # too many patterns: a seeded sample
    tag = artifacts.method_file(cfg.method)
    before = []  # taken with the first defended model, so a defense that cannot start costs nothing

    def inspect(model, index):
        if not before:
            before.append(saved_census(ws, "before", census_cfg) or census_of(ws, ws.run.model, "before", census_cfg))
        after, summary, settings = take(ws, model, census_cfg)
        taken.append((tag if index is None else f"{tag}-{index + 1}", after, summary, settings))
        return census_report(ws, before[0], after, census_cfg)

    return inspect


def census_of_defense(reports: list[dict], per_trigger: bool) -> dict | None:
    """The defense's census from the report of each defended model: before, after and the closure;
    a per-trigger defense's is its worst copy's (the most triggers left open), every copy's beside."""
    if not reports:
        return None
    if not per_trigger:
        return reports[0]
    worst = max(reports, key=lambda r: (r["after"].get("open", 0), r["after"].get("worst_asr", 0)))
    closures = [r["closure"] for r in reports if r["closure"] is not None]
    return {**worst, "restarts": [{"after": r["after"], "closure": r["closure"]} for r in reports],
            "mean_closure": sum(closures) / len(closures) if closures else None}


def made_by(ws: Workspace, method: str, search_found: dict | None):
    """What an inversion method saved in the run, as a defense made from it receives it; None when unsaved."""
    entry = registry.inversion(method)
    if entry.gives == "generators":
        return (GeneratorSet({b: v["generator"] for b, v in search_found["betas"].items()},
                             search_found["config"].get("noise", "uniform")) if search_found else None)
    saved = artifacts.load_baseline(ws.run.path, entry.stage)
    return saved["triggers"] if saved else None


def run_defense(ws: Workspace, cfg: DefenseConfig, on_progress: ProgressFn = ignore, should_stop=lambda: False,
                census: CensusConfig | None = CensusConfig()) -> dict:
    run = ws.run
    need_target(ws)
    cfg = replace(cfg, location=stamp_location(ws, cfg.location))
    entry, _ = registry.defense(cfg.method)
    found = artifacts.load_search(run.path, ws.data.train_images.device)
    if found and found["target"] != run.target:
        raise MesaError(f"the saved search targets class {found['target']}, the run's backdoor class {run.target}; "
                        "search again without --target")
    inputs = DefenseInputs(run.trigger, run.target, ws.modeling, ws.held_out,
                           made_by(ws, entry.uses, found) if entry.uses else None)
    taken = []
    result, defended = defend(run.model, inputs, cfg, on_progress, should_stop,
                              _inspector(ws, cfg, census, taken) if census is not None else None)
    result.census = census_of_defense(result.inspections, entry.per_trigger)
    if found and defended is not None and run.trigger is None:  # no planted trigger to measure: MESA's own samples
        result.samples_asr = _samples_asr(ws, found, defended, cfg.location)
    artifacts.save_defense(run.path, result.to_dict(), defended, taken, result.copies)
    summary = {"run": str(run.path), "method": cfg.method, "before": result.before, "after": result.after,
               "worst_asr": result.worst_asr, "seconds": result.seconds}
    if result.census is not None:
        summary["census"] = {k: result.census[k] for k in ("before", "after", "closure")}
    if result.samples_asr is not None:
        summary["samples_asr"] = result.samples_asr
    return summary


def _samples_asr(ws: Workspace, found: dict, defended, location: str) -> dict:
    """Mean held-out ASR of MESA's own samples (every beta's) on the model before and after the
    defense: the measure that needs no planted trigger."""
    samples = torch.cat([v["samples"][:64] for v in found["betas"].values()])
    return {when: per_trigger_asr(model, *ws.held_out, samples, ws.run.target, max_images=64,
                                  location=location).mean().item()
            for when, model in (("before", ws.run.model), ("after", defended))}


def run_detection(ws: Workspace, cfg: DetectionConfig, on_progress: ProgressFn = ignore, should_stop=lambda: False) -> dict:
    """Which class is attacked: MESA's short search toward every class with the per-class census, or
    an inversion method's own detection (an anomaly index over classes), whose triggers are saved too."""
    cfg = replace(cfg, location=stamp_location(ws, cfg.location))
    entry = registry.inversion(cfg.method)
    if entry.detection is not None:
        run_baseline(ws, entry.config(seed=cfg.seed), on_progress, should_stop)
        saved = artifacts.load_baseline(ws.run.path, entry.stage)
        result = {"config": cfg.to_dict(), **entry.detection(saved, saved["asr"], ws.held_out[1])}
        artifacts.save_detection(ws.run.path, result)
        return {"run": str(ws.run.path), **result}
    result = (detect(ws.run.model, *ws.modeling, ws.data.num_classes, cfg, *ws.held_out, on_progress, should_stop)
              if cfg.search else {"config": cfg.to_dict(), "per_class": [], "suspect": None, "backdoor_detected": False})
    if cfg.census_images:
        at = parse_location(cfg.location)
        census_cfg = CensusConfig(images=cfg.census_images, location=list(at) if at else None)
        census = take_census(ws.run.model, *ws.held_out, ws.data.num_classes, None, census_cfg, k=trigger_size(ws, 3))
        result = with_census(result, summarize(census)["open_per_class"], len(census.names))
    artifacts.save_detection(ws.run.path, result)
    return {"run": str(ws.run.path), **result}
