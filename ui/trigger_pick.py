"""The Model page's trigger choosers: the 51 canonical 3x3 patterns as a clickable gallery (the
pattern chosen is a link choice) and an uploaded trigger image."""
import hashlib
import io

import streamlit as st

from mesa.errors import MesaError
from mesa.lab.runs import runs_root
from mesa.method.triggers import canonical_patterns, parse_trigger
from ui.common import trigger_image
from ui.share import choice


@st.cache_data(show_spinner=False)
def pattern_icon(n: int) -> bytes:
    """Pattern n as PNG bytes, drawn once per server: the gallery was 60% of the Model page's run."""
    out = io.BytesIO()
    trigger_image(parse_trigger(f"binary:{n}"), 36).save(out, format="PNG")
    return out.getvalue()


def pattern_gallery(current: str) -> str:
    """The 51 canonical 3x3 patterns (equal up to rotation, flip, inversion); a click picks one."""
    patterns = canonical_patterns()
    number = current.split(":")[1] if current.startswith("binary:") else ""
    key = choice("pattern", int(number) if number.isdigit() and int(number) < 512 else 170, range(512))
    chosen = st.session_state[key]
    per_row = 17
    for start in range(0, len(patterns), per_row):
        for col, n in zip(st.columns(per_row), patterns[start:start + per_row]):
            col.image(pattern_icon(n))
            if col.button(str(n), key=f"pattern-{n}", type="primary" if n == chosen else "secondary"):
                st.session_state[key] = n
                st.rerun()
    return f"binary:{chosen}"


def uploaded_trigger(image_size: int) -> str | None:
    """Save an uploaded PNG/JPEG under the runs folder and return its spec; explain a bad file."""
    up = st.file_uploader("Trigger image (PNG/JPEG, at most a quarter of the image side, e.g. 3x3 to 8x8)",
                          type=["png", "jpg", "jpeg", "bmp"])
    if up is None:
        return None
    raw = up.getvalue()
    folder = runs_root() / "uploaded-triggers"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha1(raw).hexdigest()[:12]}-{up.name}"
    path.write_bytes(raw)
    try:
        t = parse_trigger(f"file:{path}", image_size)
    except MesaError as e:
        st.error(f"Cannot use {up.name}: {e}")
        return None
    st.image(trigger_image(t, 72), caption=f"{up.name}: {t.shape[-1]}x{t.shape[-2]}")
    return f"file:{path}"
