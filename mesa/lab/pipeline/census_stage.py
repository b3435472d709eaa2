"""The census as a stage on a saved run: taken on the held-out split, stamped where the run's attack
stamped, saved under a tag (before, floor, defense-METHOD[-RESTART]) and reused while its settings hold."""
from dataclasses import replace

from mesa.lab.storage import artifacts
from mesa.method.census import Census, CensusConfig, closure, summarize, take_census
from mesa.errors import MesaError
from mesa.lab.storage.workspace import Workspace, stamp_location, trigger_size
from mesa.method.triggers import parse_location


def census_betas(ws: Workspace) -> list[float]:
    """The search's betas (the census counts triggers at or above each), else the paper's."""
    meta = artifacts.read_search_meta(ws.run.path)
    return [b["beta"] for b in meta["betas"]] if meta else [0.5, 0.8, 0.9]


def _census_at(ws: Workspace, cfg: CensusConfig) -> CensusConfig:
    """The census stamps where the run's attack did unless told otherwise (a list: JSON round-trips it)."""
    at = parse_location(stamp_location(ws, None))
    return cfg if cfg.location is not None or at is None else replace(cfg, location=list(at))


def _census_settings(ws: Workspace, cfg: CensusConfig) -> dict:
    cfg = _census_at(ws, cfg)
    return {**cfg.to_dict(), "trigger_size": cfg.trigger_size or trigger_size(ws, 3), "target": ws.run.target}


def take(ws: Workspace, model, cfg: CensusConfig) -> tuple:
    """The census of `model` on the held-out split, with its summary and settings (what save_census keeps)."""
    cfg = _census_at(ws, cfg)
    settings = _census_settings(ws, cfg)
    census = take_census(model, *ws.held_out, ws.data.num_classes, ws.run.target, cfg, ws.run.trigger,
                         settings["trigger_size"])
    return census, summarize(census, census_betas(ws)), settings


def census_of(ws: Workspace, model, tag: str, cfg: CensusConfig) -> Census:
    """Take the census of `model` on the held-out split and save it in the run under `tag`."""
    census, summary, settings = take(ws, model, cfg)
    artifacts.save_census(ws.run.path, tag, census, summary, settings)
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
    betas = census_betas(ws)
    return {"before": summarize(before, betas), "after": summarize(after, betas),
            "closure": closure(before.asr, after.asr, _floor_asr(ws, cfg))}


def per_trigger_census(ws: Workspace, cfg: CensusConfig, method: str) -> dict:
    """A per-trigger defense's census, its worst copy's with every copy's beside: the one taken
    during the defense (each copy's own census is its kept model's, METHOD-I)."""
    saved = artifacts.load_defenses(ws.run.path).get(method)
    report = (saved or {}).get("census")
    if report is None or report["after"]["family"] != cfg.family:
        raise MesaError(f"no {cfg.family} census of the {method} defense in {ws.run.path}: "
                        f"run `defend --method {method} --census {cfg.family}` again")
    return {**report["after"], "closure": report["closure"], "before": report["before"],
            "restarts": report.get("restarts", [])}
