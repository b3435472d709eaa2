"""Share a link: the active run (by folder name, so another machine with the same runs finds it), the
configuration (attack, search, defense) and the page's main choices live in the URL's query, and a
link opened in a new session adopts them. The JSON preset export/import (Presets page) stays.

A page declares a choice with `key=choice(name, default, options)` on its widget: the widget starts from the
URL's value (when valid) and its value is written back, so the address bar always shows the view."""
import json
from urllib.parse import urlencode, urlsplit

import streamlit as st

from mesa.lab.pipeline import presets
from mesa.errors import MesaError
from mesa.lab.pipeline.preset_schema import loads
from mesa.lab.storage.runs import list_runs
from ui.common import active_run

RUN, CONFIG = "run", "config"
_ADOPTED = "link-adopted"  # the query the session was opened with (the address bar changes after)
_PAGE = "link-page"
_OPENED = "link-opened"  # the page the link opened: its choices are that page's
_BOX = "link-box"  # this run's placeholder for the link (publish() fills it)
_CHOICES = "link-choices"  # page path -> {choice name: widget key}, as the page last declared them
SECTIONS = ("attack", "search", "defense")
CHOICE_CHARS = 4_000  # a page choice's text in the URL (the longest, a list of methods, is under 200)


def adopt_link(page_path: str) -> None:
    """On a session's first run, take the run and the configuration from the URL (a bad value is
    named in a warning and ignored); page choices are taken by choice() as their widgets appear."""
    st.session_state[_PAGE] = page_path
    if _ADOPTED in st.session_state:
        return
    st.session_state[_ADOPTED] = dict(st.query_params)
    st.session_state[_OPENED] = page_path
    name = st.query_params.get(RUN)
    if name:
        found = [p for p in list_runs() if p.name == name]
        if found:
            st.session_state["pending_run"] = str(found[0])
        else:
            st.warning(f"The link's run {name!r} is not on this machine; showing the newest run instead.")
    text = st.query_params.get(CONFIG)
    if text:
        try:  # the presets' schema: types, ranges, size and depth
            st.session_state["preset"] = _merged(presets.parse(text, "it"))
        except MesaError as e:
            st.warning(f"The link's configuration is not valid ({e}); keeping this session's.")


def _merged(linked: dict) -> dict:
    """The demo preset with the link's sections laid over it key by key (a link may carry only part)."""
    base = presets.builtin().get(presets.CLASSROOM_DEMO, {})
    merged = {k: {**base.get(k, {}), **linked.get(k, {})} for k in SECTIONS}
    return presets.validate({"name": "from a link", **merged})


def choice(name: str, default, options=None) -> str:
    """The widget key of a page choice the link carries, its state seeded from the URL once. `options`:
    the values allowed (a collection, or a predicate for open-ended ones such as a number in a range);
    a value that is not one (from the URL, or left from another run's options) becomes the default,
    a list keeps its entries that are."""
    page = st.session_state.get(_PAGE, "")
    key = f"link-{page}-{name}"  # pages may use the same name (epochs) for different things
    if key not in st.session_state:
        raw = st.session_state.get(_ADOPTED, {}).get(name) if st.session_state.get(_OPENED) == page else None
        st.session_state[key] = _parse(raw, default, options) if raw is not None else default
    elif options is not None:
        value = st.session_state[key]
        fitted = _fit(value, default, options)
        if fitted != value:
            st.session_state[key] = fitted
    st.session_state.setdefault(_CHOICES, {}).setdefault(page, {})[name] = key
    return key


def _fit(value, default, options):
    if options is None:
        return value
    if isinstance(default, list):
        return [v for v in value if _allowed(v, options)] if isinstance(value, list) else default
    return value if _allowed(value, options) else default


def _allowed(value, options) -> bool:
    try:
        return bool(options(value)) if callable(options) else value in options
    except (TypeError, ValueError):
        return False


def _parse(raw: str, default, options):
    """The URL's text as a value of the default's type; the default when it is not one, or not allowed."""
    if len(raw) > CHOICE_CHARS:
        return default
    try:  # a list choice is flat: a deeper one is refused before json.loads
        value = loads(raw, "it", max_depth=1) if isinstance(default, (list, bool)) else type(default)(raw)
        if type(value) is not type(default) or (isinstance(value, list) and len(set(value)) != len(value)):
            return default
        return value if _fit(value, default, options) == value else default
    except (MesaError, ValueError, TypeError):
        return default


def _encode(value) -> str:
    return json.dumps(value) if isinstance(value, (list, bool)) else str(value)


def view_params(run_path) -> dict[str, str]:
    """The query that reproduces this view: run name, configuration, this page's choices."""
    params = {RUN: run_path.name} if run_path else {}
    preset = st.session_state.get("preset")
    if preset:  # only what differs from the demo preset, which the link's reader starts from
        base = presets.builtin().get(presets.CLASSROOM_DEMO, {})
        diff = {k: {key: v for key, v in preset.get(k, {}).items() if base.get(k, {}).get(key) != v} for k in SECTIONS}
        if any(diff.values()):
            params[CONFIG] = json.dumps({k: d for k, d in diff.items() if d}, separators=(",", ":"))
    for name, key in st.session_state.get(_CHOICES, {}).get(st.session_state.get(_PAGE, ""), {}).items():
        if st.session_state.get(key) not in (None, ""):  # an empty choice (nothing picked) stays out
            params[name] = _encode(st.session_state[key])
    return params


def publish(run_path, box) -> None:
    """Write the view into the address bar, and the link to copy into `box` (a placeholder). app.py
    calls it before the page and after it (with the choices it made); a page that stops after making
    choices calls stop_page() instead of st.stop()."""
    st.session_state[_BOX] = box
    params = view_params(run_path)
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)
    url = urlsplit(st.context.url or "")
    origin = f"{url.scheme}://{url.netloc}" if url.netloc else ""
    page_path = st.session_state.get(_PAGE, "")
    with box.container(), st.expander("Share this view", icon=":material/link:"):
        st.caption("Copy the link (the button at its right): it opens this page, run and configuration.")
        st.code(f"{origin}/{page_path}?{urlencode(params)}", language=None, wrap_lines=True)


def stop_page() -> None:
    """st.stop() for a page that has declared choices: the view is published first (app.py's own
    publish after the page is not reached)."""
    if _BOX in st.session_state:
        publish(active_run(), st.session_state[_BOX])
    st.stop()
