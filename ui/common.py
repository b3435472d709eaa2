"""What every page shares: the active run, cached loaders, the sidebar, the live job panel and
trigger images. Cached loaders are keyed by file mtimes, so new results show without stale caches."""
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch
from PIL import Image

from mesa.lab.storage import artifacts
from mesa.lab.pipeline import presets
from mesa.data import cached_data
from mesa.errors import MesaError
from mesa.lab.jobs.queue import FAILED, INTERRUPTED, job_queue
from mesa.lab.storage.runs import list_runs, load_run
from mesa.method import registry

RUN_KEY = "run_path"


def mtime(path) -> float:
    """Newest modification time under `path` (0 when absent): the cache key of a run's results."""
    p = Path(path)
    if not p.exists():
        return 0.0
    return max([p.stat().st_mtime] + [f.stat().st_mtime for f in p.rglob("*") if f.is_file()])


@st.cache_resource(show_spinner="Loading data ...", max_entries=2)
def data(spec: str):
    return cached_data(spec)


@st.cache_resource(show_spinner=False, max_entries=8)
def _run(path: str, stamp: float):
    return load_run(path)


def run(path):
    """The saved run (model on the CPU, eval mode), reloaded only when its files change."""
    return _run(str(path), mtime(Path(path) / "model.pt"))


@st.cache_resource(show_spinner=False, max_entries=8)
def _search(path: str, stamp: float):
    return artifacts.load_search(path)


def search_results(path):
    return _search(str(path), mtime(Path(path) / artifacts.FOLDER / "search.json"))


@st.cache_data(show_spinner=False, max_entries=8)
def _baseline(path: str, stage: str, stamp: float):
    return artifacts.load_baseline(path, stage)


def baseline_results(path, stage: str = "baseline"):
    """A saved set of reversed triggers (the pixel-SGD baseline's, or another inversion method's stage)."""
    return _baseline(str(path), stage, mtime(Path(path) / artifacts.FOLDER / f"{stage}.pt"))


def active_run() -> Path | None:
    """The run chosen in the sidebar; until the user picks another (or when the choice was deleted
    meanwhile), the newest run that opens. None when there is none or it cannot be opened (a broken
    config.json, missing weights): pages then draw as with no run, under a warning that says why."""
    value = st.session_state.get(RUN_KEY)
    path = Path(value) if value and Path(value).is_dir() else newest_run()
    return path if path is not None and run_problem(path) is None else None


def newest_run() -> Path | None:
    """The newest run that opens, else the newest (whose fault the sidebar then names)."""
    runs = list_runs()
    return next((p for p in runs if run_problem(p) is None), runs[0] if runs else None)


def run_problem(path) -> str | None:
    """Why the run cannot be opened, in one line; None when it opens (loaded once, then cached)."""
    try:
        run(path)
    except MesaError as e:
        return str(e)
    return None


def select_run(path) -> None:
    """Make `path` the active run at the next rerun (the sidebar's widget owns RUN_KEY once drawn)."""
    st.session_state["pending_run"] = str(path)


def sidebar() -> None:
    """The run chooser and the chosen run's summary; a run that cannot be opened is named in one
    warning above the page, which then draws as with no run."""
    runs, problem = [str(p) for p in list_runs()], None
    with st.sidebar:
        st.markdown("### Active run")
        if not runs:
            st.session_state.pop(RUN_KEY, None)
            st.caption("No saved run yet: train one on the **Model** page or run the demo on **Overview**.")
        else:
            pending = st.session_state.pop("pending_run", None)
            if pending in runs:
                st.session_state[RUN_KEY] = pending
            if st.session_state.get(RUN_KEY) not in runs:
                st.session_state[RUN_KEY] = str(newest_run())
            st.selectbox("Run", runs, key=RUN_KEY, format_func=lambda p: Path(p).name)
            problem = run_problem(st.session_state[RUN_KEY])
            if not problem:
                _summary(run(st.session_state[RUN_KEY]))
        st.markdown("### Device")
        st.caption(f"GPU: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
                   else f"CPU ({torch.get_num_threads()} threads), no GPU")
    if problem:
        st.warning(f"Run `{Path(st.session_state[RUN_KEY]).name}` cannot be opened: {problem}",
                   icon=":material/warning:")


def _summary(r) -> None:
    c = r.config
    st.markdown(f"**data** {c['data']} · **model** {c['model']}  \n**trigger** `{c.get('trigger')}` "
                + (f"· **target** {c['target']} ({c['classes'][c['target']]})" if c.get("target") is not None
                   else "· **target** unknown (run detection)"))
    a, b = st.columns(2)
    a.metric("Clean acc", f"{r.metrics.get('clean_acc', float('nan')):.1%}")
    b.metric("ASR", f"{r.metrics.get('asr', float('nan')):.1%}")


def trigger_image(trigger: torch.Tensor, size: int = 48) -> Image.Image:
    """One 3 x k x k trigger as a crisp (nearest-neighbour) size x size picture; a full-image trigger
    (4 x H x W: mask, then pattern) as it is stamped on a mid-grey image, grey + mask x (pattern - grey)."""
    trigger = 0.5 + trigger[:1] * (trigger[1:] - 0.5) if len(trigger) == 4 else trigger
    pixels = (trigger.detach().cpu().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(pixels).resize((size, size), Image.NEAREST)


def trigger_hover(trigger: torch.Tensor) -> str:
    """A trigger drawn in a plotly hover label: one coloured block character per pixel."""
    pixels = (trigger.detach().cpu().clamp(0, 1) * 255).round().int().permute(1, 2, 0).tolist()
    return "<br>".join("".join(f"<span style='color:rgb({r},{g},{b})'>██</span>" for r, g, b in row)
                       for row in pixels)


def mosaic(triggers: torch.Tensor, columns: int = 16, cell: int = 24, pad: int = 2) -> Image.Image:
    """Many triggers in one picture on a grey background (one image is much lighter than 64 widgets)."""
    n = len(triggers)
    rows = max(1, -(-n // columns))
    canvas = Image.new("RGB", (columns * (cell + pad) + pad, rows * (cell + pad) + pad), (128, 128, 128))
    for i, t in enumerate(triggers):
        canvas.paste(trigger_image(t, cell), (pad + (i % columns) * (cell + pad), pad + (i // columns) * (cell + pad)))
    return canvas


def image_grid(images: torch.Tensor, size: int = 96) -> list[Image.Image]:
    """uint8 or [0, 1] images (N x 3 x H x W) as enlarged, crisp pictures."""
    x = images.detach().cpu()
    x = x if x.dtype == torch.uint8 else (x.clamp(0, 1) * 255).round().byte()
    return [Image.fromarray(np.ascontiguousarray(i.permute(1, 2, 0).numpy())).resize((size, size), Image.NEAREST)
            for i in x]


def events_frame(job) -> pd.DataFrame:
    return pd.DataFrame(list(job.events))


def submit(kind: str, label: str, work, run_path=None):
    """Queue a job and watch it from this session: when it ends, the page reruns to show its results
    (watching starts here, not in the panel, since a quick job may end before the panel first looks)."""
    job = job_queue().submit(kind, label, work, run_path)
    st.session_state[f"watching-{job.id}"] = True
    return job


def job_panel(kind: str, show=None, run_path=None, every: float = 2.0) -> None:
    """Live view of the latest job of `kind`: status, progress, cancel, `show(job)` (charts), error.
    Polls while a job is queued or running; reruns the whole page once when a watched job ends,
    so the page's saved results appear."""
    poll = every if job_queue().active() else None

    @st.fragment(run_every=poll)
    def panel():
        mine = [j for j in job_queue().active() if j.kind == kind and (run_path is None or j.run_path == str(run_path))]
        job = mine[0] if mine else job_queue().latest(kind, run_path)
        if job is None:
            return
        if len(mine) > 1:
            st.caption(f"{len(mine) - 1} more {kind} job(s) queued after this one.")
        watch = f"watching-{job.id}"
        stage = job.waiting_for or (job.latest.stage if job.latest else "waiting for the worker")
        st.markdown(f"**Job #{job.id}** {job.label}: **{job.status}**")
        st.progress(job.fraction, text=f"{stage}: {job.fraction:.0%}")
        if not job.done:
            st.session_state[watch] = True
            if st.button("Cancel", key=f"cancel-{kind}-{job.id}", icon=":material/stop:"):
                job.cancel()
        if show is not None and job.events:
            show(job)
        if job.status == FAILED:
            st.error(f"Job #{job.id} failed: {job.error}")
        elif job.status == INTERRUPTED:
            st.warning(f"Job #{job.id} was interrupted: {job.error}")
        if job.done and st.session_state.pop(watch, False):
            if isinstance(job.result, dict) and job.result.get("run"):
                select_run(job.result["run"])
            st.rerun(scope="app")

    panel()


def current_preset() -> dict:
    """The session's configuration (attack, search, defense), which pages edit and Presets exports."""
    if "preset" not in st.session_state:
        st.session_state["preset"] = dict(presets.builtin()[presets.CLASSROOM_DEMO])
    return st.session_state["preset"]


def trigger_sources(path, patches: bool = False) -> list[tuple[str, "torch.Tensor", "torch.Tensor | None"]]:
    """(source, triggers N x 3 x k x k, per-trigger ASR or None) for every saved kind of trigger of a run:
    each inversion method's (MESA's samples per beta; the reversed triggers of the others) and the
    attacker's original trigger. `patches`: only k x k patches (not a full-image mask and pattern)."""
    out = []
    for name, inversion in registry.inversions().items():
        if inversion.gives == "generators":
            found = search_results(path)
            out += [(f"MESA β={beta:g}", b["samples"], b["asr"]) for beta, b in (found or {}).get("betas", {}).items()]
        elif (base := baseline_results(path, inversion.stage)) is not None:
            out.append((name, base["triggers"], base["asr"]))
    r = run(path)
    if r.trigger is not None:
        out.append(("original", r.trigger[None], torch.tensor([r.metrics["asr"]]) if "asr" in r.metrics else None))
    return [s for s in out if s[1].shape[1] == 3] if patches else out
