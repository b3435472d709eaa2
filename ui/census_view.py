"""What the Census, Probe, Trigger space and Defense pages share about censuses: cached loading, one
picture of every trigger of a census as a tiny crisp icon framed in its ASR colour (one image is far
lighter than 512 widgets), with an invisible layer of points for hover and click, and the probe."""
import base64
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from mesa.lab.storage import artifacts
from mesa.method import registry
from mesa.method.census import OPEN, closure
from mesa.errors import MesaError
from mesa.lab.pipeline.probe import BACKDOORED, ask, open_probe
from ui.common import data, mtime, run
from ui.charts import grouped_bars

# ASR colour: grey when closed, orange at the open line (0.5), red when always open.
STOPS, COLOURS = [0.0, OPEN, 1.0], np.array([[190, 190, 190], [255, 165, 0], [200, 0, 0]])
SCALE = [[s, f"rgb{tuple(int(v) for v in c)}"] for s, c in zip(STOPS, COLOURS)]
PLANTED, PICKED, MESA = "#0050ff", "black", "#00a050"
ICON, RING, GAP = 12, 2, 2  # picture pixels of an icon, its ASR frame, the gap between icons


def columns_for(n: int) -> int:
    """Icons per row: 16 for the 512 patterns (a 16 x 32 grid of big icons), more for larger families."""
    return 16 if n <= 512 else 64


@st.cache_resource(show_spinner=False, max_entries=8)
def _censuses(path: str, family: str, stamp: float) -> dict:
    tags = sorted(artifacts.list_censuses(path, family), key=lambda t: (t != "before", t != "floor", t))
    return {tag: artifacts.load_census(path, tag, family) for tag in tags}


def censuses(path, family: str = "binary") -> dict:
    """{tag: {"tag", "settings", "summary", "census"}} of every census saved in the run, reloaded when one changes."""
    return _censuses(str(path), family, mtime(Path(path) / artifacts.FOLDER))


def label(tag: str, methods) -> str:
    """A census tag in words: before, floor, after METHOD [restart N]."""
    if tag in ("before", "floor"):
        return {"before": "before defense", "floor": "floor (clean base model)"}[tag]
    for m in sorted(methods, key=len, reverse=True):
        file = artifacts.method_file(m)
        if tag == file:
            return f"after {m}"
        if tag.startswith(file + "-") and tag[len(file) + 1:].isdigit():
            return f"after {m} (restart {tag[len(file) + 1:]})"
    return tag


def default_tags(found: dict) -> list[str]:
    """Before, the floor and each defense; of a per-trigger defense's copies (one per restart) only
    the one leaving the most open."""
    dropped = set()
    for d in registry.defenses().values():
        file = artifacts.method_file(d.name)
        copies = [t for t in found if d.per_trigger and t.startswith(file + "-") and t[len(file) + 1:].isdigit()]
        worst = max(copies, key=lambda t: found[t]["summary"].get("open", 0), default=None)
        dropped |= set(copies) - {worst}
    return [t for t in found if t not in dropped]


def counts(found: dict, tags, methods) -> list[dict]:
    """One row per census: open triggers, the worst, the planted trigger's ASR and the closure."""
    before, floor = found.get("before"), found.get("floor")
    rows = []
    for tag in tags:
        s, c = found[tag]["summary"], found[tag]["census"]
        shut = None
        if before is not None and tag.startswith("defense-"):
            shut = closure(before["census"].asr, c.asr, floor["census"].asr if floor else None)
        rows.append({"census": label(tag, methods), "open (ASR ≥ 0.5)": s.get("open"), "of": s["triggers"],
                     "worst trigger": s.get("worst_trigger"), "worst ASR": s.get("worst_asr"),
                     "worst ASR, 95%": interval(s.get("worst_asr_ci")), "noise alone, up to": s.get("noise_max"),
                     "planted ASR": s.get("original_asr"), "planted, 95%": interval(s.get("original_asr_ci")),
                     "closure": shut})
    return rows


def interval(ci) -> str:
    """A saved [low, high] as text for a table ("" for censuses saved before intervals)."""
    return f"{ci[0]:.3f}-{ci[1]:.3f}" if ci else ""


def sheet(triggers: torch.Tensor, asr: torch.Tensor, columns: int) -> np.ndarray:
    """Every trigger as a crisp icon framed in its ASR colour, in rows of `columns`: H x W x 3 uint8."""
    n, k = len(triggers), triggers.shape[-1]
    zoom = max(1, ICON // k)
    icons = (triggers.clamp(0, 1) * 255).round().byte().repeat_interleave(zoom, -1).repeat_interleave(zoom, -2)
    side = k * zoom + 2 * RING + GAP
    frame = np.stack([np.interp(asr.clamp(0, 1).numpy(), STOPS, COLOURS[:, i]) for i in range(3)], 1)
    cells = torch.full((columns * -(-n // columns), 3, side, side), 255, dtype=torch.uint8)
    cells[:n, :, GAP:, GAP:] = torch.from_numpy(frame.round().astype(np.uint8))[:, :, None, None]
    cells[:n, :, GAP + RING:side - RING, GAP + RING:side - RING] = icons
    rows = len(cells) // columns
    picture = cells.view(rows, columns, 3, side, side).permute(0, 3, 1, 4, 2).reshape(rows * side, columns * side, 3)
    return np.pad(picture.numpy(), ((0, GAP), (0, GAP), (0, 0)), constant_values=255)


def _centre(i: int, side: int, columns: int) -> tuple[float, float]:
    return (i % columns) * side + GAP + (side - GAP) / 2 - 0.5, (i // columns) * side + GAP + (side - GAP) / 2 - 0.5


def _box(fig, i: int, side: int, columns: int, colour: str, dash: str = "solid", inset: float = 0) -> None:
    x, y = _centre(i, side, columns)
    r = side / 2 - inset
    fig.add_shape(type="rect", x0=x - r, x1=x + r, y0=y - r, y1=y + r, line=dict(color=colour, width=3, dash=dash))


def census_figure(path, tag: str, planted: str | None = None, picked: str | None = None, family: str = "binary",
                  hits: tuple[str, ...] = ()):
    """The picture of the run's census `tag`; hover shows a trigger's name and ASR, a click selects it
    (customdata[0]); `hits` (MESA's samples) are boxed inside their frame. Built once per census and marks, shared by every session: 512 points and a PNG
    were most of the Census page's run."""
    return _census_figure(str(path), family, mtime(Path(path) / artifacts.FOLDER), tag, planted, picked, hits)


@st.cache_resource(show_spinner=False, max_entries=32)
def _census_figure(path: str, family: str, stamp: float, tag: str, planted: str | None, picked: str | None,
                   hits: tuple[str, ...]) -> go.Figure:
    census = _censuses(path, family, stamp)[tag]["census"]
    asr = census.asr
    columns = columns_for(len(asr))
    picture = sheet(census.triggers, asr, columns)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    side = census.triggers.shape[-1] * max(1, ICON // census.triggers.shape[-1]) + 2 * RING + GAP
    xy = np.array([_centre(i, side, columns) for i in range(len(asr))])
    fig = go.Figure(go.Image(source="data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(),
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=xy[:, 0], y=xy[:, 1], mode="markers", customdata=[[n, a] for n, a in zip(census.names, asr.tolist())],
        marker=dict(size=side, symbol="square", opacity=0, color=asr.tolist(), colorscale=SCALE, cmin=0, cmax=1,
                    colorbar=dict(title="ASR", thickness=10, orientation="h", y=0, yanchor="top")),
        hovertemplate="%{customdata[0]}<br>ASR %{customdata[1]:.1%}<extra></extra>", showlegend=False))
    index = {n: i for i, n in enumerate(census.names)}
    for name, colour, dash in ((planted, PLANTED, "solid"), (picked, PICKED, "dot")):
        if name in index:
            _box(fig, index[name], side, columns, colour, dash)
    for name in hits:
        if name in index:
            _box(fig, index[name], side, columns, MESA, "dash", inset=RING + 1)
    fig.update_xaxes(visible=False, range=[-0.5, picture.shape[1] - 0.5])
    fig.update_yaxes(visible=False, range=[picture.shape[0] - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(height=int(picture.shape[0] * 1.5) + 60, margin=dict(l=0, r=0, t=10, b=50), dragmode=False)
    return fig


@st.cache_resource(show_spinner="Loading the models ...", max_entries=4)
def _probe(path: str, stamp: float):
    return open_probe(path, data(run(path).config["data"]))


def _probe_stamp(path) -> float:
    """The newest of the run's model and its defended models: the probe reloads when one changes."""
    folder = Path(path) / artifacts.FOLDER
    return max(f.stat().st_mtime for f in [Path(path) / "model.pt", *folder.glob("defense-*.pt")] if f.is_file())


def probe_of(path):
    """The probe of a run (its model, every kept defended model, held-out images)."""
    return _probe(str(path), _probe_stamp(path))


@st.cache_resource(show_spinner=False, max_entries=64)
def _answer(path: str, stamp: float, pixels: bytes, _trigger: torch.Tensor):
    start = time.perf_counter()
    answer = ask(_probe(path, stamp), _trigger)
    return answer, time.perf_counter() - start


def answer_of(path, trigger: torch.Tensor):
    """The probe's answer for a trigger and the seconds it took, computed once per server and shared
    (the answer is deterministic): a class opening the Probe page on the planted trigger together
    costs one pass over the models, not one per student (docs/RESULTS.md, ten sessions)."""
    trigger = trigger.detach().cpu().float().contiguous()
    return _answer(str(path), _probe_stamp(path), trigger.numpy().tobytes(), trigger)


def residual(result: dict) -> dict:
    """A defense's residual backdoor from its census (a per-trigger one: its worst copy): triggers open
    before and after, the worst one left, and the closure."""
    found = result.get("census")
    if not found:
        return {}
    before, after = found["before"], found["after"]
    return {"open before": before.get("open"), "open after": after.get("open"),
            "worst trigger after": after.get("worst_trigger"), "worst ASR after": after.get("worst_asr"),
            "closure": found.get("closure")}


def floor_of(path) -> dict | None:
    """The floor to mark: the clean base model's census when one is saved (tag "floor"), else the share
    of clean held-out images the backdoored model already sends to the target (no trigger at all)."""
    found = censuses(path).get("floor")
    if found:
        s = found["summary"]
        return {"asr": s.get("original_asr"), "open": s.get("open"), "label": "floor: clean base model"}
    try:
        return {"asr": probe_of(path).no_trigger[BACKDOORED], "open": None, "label": "floor: no trigger"}
    except MesaError:
        return None


def floor_line(floor, value: str) -> tuple[float, str] | None:
    """The floor's `value` (asr, open) as a dotted line for grouped_bars, when it is known."""
    return (floor[value], floor["label"]) if floor and floor.get(value) is not None else None


def residual_chart(table: pd.DataFrame, floor, key: str) -> None:
    """Per method, the triggers of the census open before and after the defense, the floor marked."""
    if "open after" not in table:
        return
    long = table.melt("method", ["open before", "open after"], var_name="when", value_name="open triggers").dropna()
    st.plotly_chart(grouped_bars(long, "method", "open triggers", "when", line=floor_line(floor, "open"),
                                 title="Triggers still open (census, ASR ≥ 0.5; one copy per trigger: the worst)"), key=key)


def census_source(path) -> list:
    """[("census", triggers, ASR)] of the run's own model when a census of its trigger size is saved, else []:
    a background layer for trigger maps, so MESA's clouds are seen against the triggers that really work."""
    found = censuses(path).get("before")
    run_k = run(path).trigger.shape[-1] if run(path).trigger is not None else 3
    if found is None or found["census"].triggers.shape[-1] != run_k:
        return []
    return [("census", found["census"].triggers, found["census"].asr)]


def census_trace(df: pd.DataFrame) -> go.Scatter:
    """The census points of a projection (columns x, y, source, index, asr, trigger), coloured by ASR."""
    return go.Scatter(x=df["x"], y=df["y"], mode="markers", name="census (colour: ASR)",
                      customdata=df[["source", "index", "asr", "trigger"]].values,
                      hovertemplate="%{customdata[3]}<br>census #%{customdata[1]}<br>ASR %{customdata[2]:.1%}<extra></extra>",
                      marker=dict(size=10, opacity=0.4, color=df["asr"], colorscale=SCALE, cmin=0, cmax=1,
                                  colorbar=dict(title="census ASR", thickness=10, len=0.6)))
