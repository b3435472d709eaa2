"""The coverage of a run's MESA search (mesa/method/coverage.py) against the census of its backdoored
model: measured when the search is saved, and again for a search saved before coverage was measured
or before the census was taken."""
from dataclasses import replace

import torch

from mesa.errors import MesaError
from mesa.lab.storage import artifacts
from mesa.method.census import Census
from mesa.method.coverage import coverage_of

COVERAGE_KEYS = ("distinct", "modes", "basis", "hit", "open", "open_share", "coverage")


def _census(run_path, family: str) -> Census | None:
    """The saved census of the backdoored model (tag "before"); an unreadable one counts as none, so
    that a finished search is never lost to it."""
    try:
        found = artifacts.load_census(run_path, "before", family)
    except MesaError:
        return None
    return found["census"] if found else None


def reference(run_path, trigger_spec: str | None) -> tuple[Census | None, str | None]:
    """The census to measure against and a note on the choice: a colour-trigger run is compared with
    its colour census when one is saved, else (and every other run) with the binary census."""
    if str(trigger_spec or "").startswith("color"):
        colour = _census(run_path, "color")
        if colour is not None:
            return colour, None
        return _census(run_path, "binary"), "no colour census saved: binarised instead"
    return _census(run_path, "binary"), None


def search_coverage(run_path, trigger_spec: str | None, samples: dict[float, torch.Tensor]) -> dict[float, dict]:
    """{beta: coverage keys for the search's summary} for each beta's samples."""
    census, note = reference(run_path, trigger_spec)
    out = {}
    for beta, triggers in samples.items():
        cov = coverage_of(triggers, census)
        out[beta] = (replace(cov, basis=f"{cov.basis}; {note}") if note else cov).to_dict()
    return out


def saved_coverage(run_path, trigger_spec: str | None, found: dict) -> dict[float, dict]:
    """The coverage saved with a loaded search (artifacts.load_search), measured afresh only where it
    is missing or was measured with no census that now exists."""
    has_census = reference(run_path, trigger_spec)[0] is not None
    stale = {b: v["samples"] for b, v in found["betas"].items()
             if "distinct" not in v or (has_census and "open" not in v)}
    fresh = search_coverage(run_path, trigger_spec, stale) if stale else {}
    return {b: fresh.get(b) or {k: v[k] for k in COVERAGE_KEYS if k in v} for b, v in found["betas"].items()}

