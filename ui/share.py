"""Share a link: the active run (by folder name, so another machine with the same runs finds it), the
configuration (attack, search, defense) and the page's main choices live in the URL's query, and a
link opened in a new session adopts them. The JSON preset export/import (Presets page) stays.

A page declares a choice with `key=choice(name, default)` on its widget: the widget starts from the
URL's value (when valid) and its value is written back, so the address bar always shows the view."""
import json
from urllib.parse import urlencode, urlsplit

import streamlit as st

from mesa import presets
from mesa.errors import MesaError
from mesa.runs import list_runs

RUN, CONFIG = "run", "config"
_ADOPTED = "link-adopted"  # the query the session was opened with (the address bar changes after)
_PAGE = "link-page"
_CHOICES = "link-choices"  # page path -> {choice name: widget key}, as the page last declared them
SECTIONS = ("attack", "search", "defense")


def adopt_link(page_path: str) -> None:
    """On a session's first run, take the run and the configuration from the URL (a bad value is
    named in a warning and ignored); page choices are taken by choice() as their widgets appear."""
    st.session_state[_PAGE] = page_path
    if _ADOPTED in st.session_state:
        return
    st.session_state[_ADOPTED] = dict(st.query_params)
    name = st.query_params.get(RUN)
    if name:
        found = [p for p in list_runs() if p.name == name]
        if found:
            st.session_state["pending_run"] = str(found[0])
        else:
            st.warning(f"The link's run {name!r} is not on this machine; showing the newest run instead.")
    text = st.query_params.get(CONFIG)
    if text:
        try:
            st.session_state["preset"] = _merged(presets.parse(text))
        except MesaError as e:
            st.warning(f"The link's configuration is not valid ({e}); keeping this session's.")


def _merged(linked: dict) -> dict:
    """The demo preset with the link's sections laid over it key by key (a link may carry only part)."""
    base = presets.builtin().get("CPU classroom demo", {})
    merged = {k: {**base.get(k, {}), **linked.get(k, {})} for k in SECTIONS}
    return presets.validate({"name": "from a link", **merged})


def choice(name: str, default, options=None) -> str:
    """The widget key of a page choice the link carries, its state seeded from the URL once."""
    key = f"link-{name}"
    if key not in st.session_state:
        raw = st.session_state.get(_ADOPTED, {}).get(name)
        st.session_state[key] = _parse(raw, default, options) if raw is not None else default
    page = st.session_state.get(_PAGE, "")
    st.session_state.setdefault(_CHOICES, {}).setdefault(page, {})[name] = key
    return key


def _parse(raw: str, default, options):
    try:
        value = type(default)(raw) if not isinstance(default, (list, bool)) else json.loads(raw)
    except (ValueError, TypeError):
        return default
    if options is not None and (value not in options if not isinstance(value, list) else not set(value) <= set(options)):
        return default
    return value


def _encode(value) -> str:
    return json.dumps(value) if isinstance(value, (list, bool)) else str(value)


def view_params(run_path) -> dict[str, str]:
    """The query that reproduces this view: run name, configuration, this page's choices."""
    params = {RUN: run_path.name} if run_path else {}
    preset = st.session_state.get("preset")
    if preset:  # only what differs from the demo preset, which the link's reader starts from
        base = presets.builtin().get("CPU classroom demo", {})
        diff = {k: {key: v for key, v in preset.get(k, {}).items() if base.get(k, {}).get(key) != v} for k in SECTIONS}
        if any(diff.values()):
            params[CONFIG] = json.dumps({k: d for k, d in diff.items() if d}, separators=(",", ":"))
    for name, key in st.session_state.get(_CHOICES, {}).get(st.session_state.get(_PAGE, ""), {}).items():
        if key in st.session_state:
            params[name] = _encode(st.session_state[key])
    return params


def publish(run_path, box) -> None:
    """Write the view into the address bar, and the link to copy into `box` (a placeholder). app.py
    calls it before the page (a page may st.stop()) and after it (with the choices it made)."""
    params = view_params(run_path)
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)
    url = urlsplit(st.context.url or "")
    origin = f"{url.scheme}://{url.netloc}" if url.netloc else ""
    page_path = st.session_state.get(_PAGE, "")
    with box.container(), st.expander("Share this view", icon=":material/link:"):
        st.caption("Copy the link (the button at its right): it opens this page, run and configuration.")
        st.code(f"{origin}/{page_path}?{urlencode(params)}", language=None, wrap_lines=True)
