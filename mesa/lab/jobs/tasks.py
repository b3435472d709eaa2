"""The work the app hands to its job queue, built from top-level functions and plain configs
(functools.partial), so it can be sent to the job process (mesa/lab/jobs/worker.py). Each is called
`work(on_progress, should_stop)`; the CLI and scripts call the same works directly."""
from functools import partial
from pathlib import Path

from mesa.lab.pipeline import stages
from mesa.lab.storage.artifacts import method_file
from mesa.lab.pipeline.attack_stage import run_attack
from mesa.method.census import CensusConfig
from mesa.data import cached_data
from mesa.lab.pipeline.probe import kept_defenses
from mesa.progress import Progress
from mesa.lab.storage.runs import read_json


def open_cached(run_path):
    """A stage Workspace on a run, its data from the process cache."""
    config = read_json(Path(run_path) / "config.json", "run config")
    return stages.open_run(run_path, data=cached_data(config["data"]))


def _attack(cfg, on_progress, should_stop):
    path, metrics = run_attack(cfg, on_progress, should_stop, data=cached_data(cfg.data))
    return {"run": str(path), "metrics": metrics}


def attack_work(cfg):
    """Train a backdoored run (`cfg` an AttackConfig); the result is {"run": path, "metrics": ...}."""
    return partial(_attack, cfg)


_STAGES = {"search": stages.run_search, "baseline": stages.run_baseline,
           "defense": stages.run_defense, "detection": stages.run_detection}


def _stage(run_path, stage, cfg, options, on_progress, should_stop):
    return _STAGES[stage](open_cached(run_path), cfg, on_progress=on_progress, should_stop=should_stop, **options)


def stage_work(run_path, stage: str, cfg, **options):
    """One engine stage ("search", "baseline", "defense", "detection") on a saved run."""
    if stage not in _STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    return partial(_stage, str(run_path), stage, cfg, options)


def _pipeline(attack_cfg, search_cfg, defense_cfgs, baseline_cfg, census_cfg, samples, on_progress, should_stop):
    out = _attack(attack_cfg, on_progress, should_stop)
    out["defenses"] = []
    if should_stop():
        return out
    ws = open_cached(out["run"])
    out["search"] = stages.run_search(ws, search_cfg, num_samples=samples, on_progress=on_progress,
                                      should_stop=should_stop)
    if baseline_cfg is not None and not should_stop():
        out["baseline"] = stages.run_baseline(ws, baseline_cfg, on_progress, should_stop)
    for cfg in defense_cfgs:
        if should_stop():
            break
        out["defenses"].append(stages.run_defense(ws, cfg, on_progress, should_stop, census=census_cfg))
    return out


def pipeline_work(attack_cfg, search_cfg, defense_cfgs, baseline_cfg=None, census_cfg=None, samples: int = 64):
    """The full demo: attack, then MESA search (`samples` triggers per beta measured), the pixel-SGD
    baseline (when configured), then each defense with the census of what it leaves open, on the
    new run; stops between stages."""
    return partial(_pipeline, attack_cfg, search_cfg, list(defense_cfgs), baseline_cfg, census_cfg, samples)


def _census(run_path, cfg, on_progress, should_stop):
    ws = open_cached(run_path)
    methods = [None] + [m for m in kept_defenses(run_path) if stages.saved_census(ws, method_file(m), cfg) is None]
    out = {"run": str(run_path), "censuses": []}
    for i, method in enumerate(methods):
        if should_stop():
            break
        on_progress(Progress(f"census {method or 'before'}", i, len(methods)))
        out["censuses"].append(stages.run_census(ws, cfg, method))
    on_progress(Progress("census", len(methods), len(methods)))
    return out


def census_work(run_path, cfg: CensusConfig = CensusConfig()):
    """The census as one job: the run's own model ("before"), then every defended model the run kept
    whose census is missing (each copy of a per-trigger defense too; theirs are usually taken during the defense)."""
    return partial(_census, str(run_path), cfg)
