"""The Model page's trigger choosers: the 51 canonical 3x3 patterns in one numbered picture with a
chooser (the pattern chosen is a link choice), and an uploaded trigger image."""
import hashlib
import io
import re
from pathlib import PurePath

import streamlit as st
import torch
from PIL import Image, ImageDraw, ImageFont

from mesa.errors import MesaError
from mesa.lab.storage.runs import runs_root
from mesa.method.triggers import MAX_TRIGGER_FILE_BYTES, canonical_patterns, parse_trigger
from ui.common import trigger_image
from ui.share import choice


@st.cache_data(show_spinner=False, max_entries=64)
def pattern_sheet(chosen: int) -> bytes:
    """The 51 patterns in one numbered picture (PNG), the chosen one framed in red. One image, not 51:
    each image is a request per student, and 51 icons and buttons made the Model page the slowest
    with ten sessions (docs/RESULTS.md)."""
    patterns, per_row, icon, pad, text = canonical_patterns(), 17, 36, 10, 14
    rows = -(-len(patterns) // per_row)
    canvas = Image.new("RGB", (per_row * (icon + pad) + pad, rows * (icon + pad + text) + pad), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(12)
    for i, n in enumerate(patterns):
        x, y = pad + (i % per_row) * (icon + pad), pad + (i // per_row) * (icon + pad + text)
        canvas.paste(trigger_image(parse_trigger(f"binary:{n}"), icon), (x, y))
        chosen_here = n == chosen
        draw.rectangle([x - 3, y - 3, x + icon + 2, y + icon + 2], outline=(230, 40, 40) if chosen_here else (170, 170, 170),
                       width=3 if chosen_here else 1)
        draw.text((x + icon // 2, y + icon + 4), str(n), fill="black", font=font, anchor="mt")
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def pattern_gallery(current: str) -> str:
    """The 51 canonical 3x3 patterns (equal up to rotation, flip, inversion), numbered in one picture;
    the number picks one (a link choice: any of the 512 a link names is offered too)."""
    patterns = list(canonical_patterns())
    number = current.split(":")[1] if current.startswith("binary:") else ""
    key = choice("pattern", int(number) if number.isdigit() and int(number) < 512 else 170, range(512))
    chosen = st.session_state[key]
    st.image(pattern_sheet(chosen))
    st.radio("Pattern (its number in the picture)", patterns + ([chosen] if chosen not in patterns else []),
             horizontal=True, key=key)
    return f"binary:{st.session_state[key]}"


def save_uploaded_trigger(raw: bytes, name: str, image_size: int) -> tuple[str, torch.Tensor]:
    """Keep an uploaded trigger image under the runs folder: (its spec, the trigger). The client's name
    reduced to [A-Za-z0-9._-], the size checked before writing, a file that fails to read removed."""
    if len(raw) > MAX_TRIGGER_FILE_BYTES:
        raise MesaError(f"it is {len(raw) >> 10} KiB: a trigger image is at most {MAX_TRIGGER_FILE_BYTES >> 20} MiB")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", PurePath(name.replace("\\", "/")).name).lstrip(".")[-60:] or "trigger"
    folder = runs_root() / "uploaded-triggers"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha1(raw).hexdigest()[:12]}-{safe}"
    path.write_bytes(raw)
    try:
        return f"file:{path}", parse_trigger(f"file:{path}", image_size)
    except MesaError:
        path.unlink(missing_ok=True)
        raise


def uploaded_trigger(image_size: int) -> str | None:
    """Save an uploaded PNG/JPEG under the runs folder and return its spec; explain a bad file."""
    up = st.file_uploader("Trigger image (PNG/JPEG, at most a quarter of the image side, e.g. 3x3 to 8x8)",
                          type=["png", "jpg", "jpeg", "bmp"])
    if up is None:
        return None
    try:
        spec, t = save_uploaded_trigger(up.getvalue(), up.name, image_size)
    except MesaError as e:
        st.error(f"Cannot use {up.name}: {e}")
        return None
    st.image(trigger_image(t, 72), caption=f"{up.name}: {t.shape[-1]}x{t.shape[-2]}")
    return spec
