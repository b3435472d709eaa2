"""How much of the census's open set MESA's samples reach, for the MESA page's table and the marks on
the Census page's picture. Read from the saved search; measured afresh (cheap) only for a search saved
before coverage was measured or before its census was taken (mesa/lab/pipeline/search_coverage.py)."""
from pathlib import Path

import pandas as pd
import streamlit as st

from mesa.lab.storage import artifacts
from mesa.lab.pipeline.search_coverage import saved_coverage
from mesa.method.coverage import member_names
from ui.census_view import censuses
from ui.common import mtime, run, search_results

LOW_COVERAGE = ("**Low coverage** means MESA's samples fall on only a few of the triggers that open the backdoor: "
                "the distribution it learned has collapsed onto a few modes, and a defense trained on them may "
                "leave the others open (check what it leaves on the **Census** page).")
MARK_LEGEND = "Boxed in green (dashed): the patterns MESA's samples fall on, every beta's"


@st.cache_resource(show_spinner=False, max_entries=8)
def _coverage(path: str, stamp: float) -> dict:
    found = search_results(path)
    return saved_coverage(path, run(path).config.get("trigger"), found) if found else {}


def coverage_table(path) -> pd.DataFrame | None:
    """One row per beta: distinct patterns, modes, and with a census the open set hit; None without a search."""
    per_beta = _coverage(str(path), mtime(Path(path) / artifacts.FOLDER))
    if not per_beta:
        return None
    rows = [{"beta": beta, "distinct patterns": c["distinct"], "modes (exp entropy)": round(c["modes"], 2),
             "open set hit": f"{c['hit']} of {c['open']}" if "open" in c else "no census yet",
             "coverage": c.get("coverage"), "samples that are open": c.get("open_share"), "mapped by": c["basis"]}
            for beta, c in per_beta.items()]
    return pd.DataFrame(rows)


@st.cache_resource(show_spinner=False, max_entries=16)
def _hits(path: str, family: str, stamp: float) -> tuple[str, ...]:
    found, shown = search_results(path), censuses(path, family)
    if not found or not shown:
        return ()
    census = shown.get("before", next(iter(shown.values())))["census"]
    names = set()
    for b in found["betas"].values():
        names.update(member_names(b["samples"], census if family == "color" else None)[0])
    return tuple(sorted(names))


def mesa_hits(path, family: str = "binary") -> tuple[str, ...]:
    """The members of the family's census that MESA's samples (all betas) fall on, by name."""
    return _hits(str(path), family, mtime(Path(path) / artifacts.FOLDER))
