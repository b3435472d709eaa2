"""The Probe page's trigger being edited: nine cell colours in session state (the colour pickers follow),
and its name in a link: `binary:N` when every cell is black or white, else the nine colours
(`rrggbb-rrggbb-...`, row by row), so a shared link reopens the probe on the same trigger."""
import re

import streamlit as st
import torch

from mesa.errors import MesaError
from mesa.method.triggers import parse_trigger, pattern_number

K, CELLS, BLACK, WHITE = 3, "probe-cells", "#000000", "#ffffff"
HEX = re.compile(r"[0-9a-f]{6}")


def colours(trigger: torch.Tensor) -> list[str]:
    pixels = (trigger.clamp(0, 1) * 255).round().int().permute(1, 2, 0).reshape(-1, 3).tolist()
    return ["#{:02x}{:02x}{:02x}".format(*p) for p in pixels]


def load(cells: list[str]) -> None:
    """Make these nine colours the trigger being edited."""
    st.session_state[CELLS] = list(cells)
    for i, colour in enumerate(cells):
        st.session_state[f"probe-rgb-{i}"] = colour


def edited() -> torch.Tensor:
    rgb = [[int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)] for c in st.session_state[CELLS]]
    return torch.tensor(rgb).T.reshape(3, K, K)


def flip(i: int) -> None:
    cells = st.session_state[CELLS]
    cells[i] = BLACK if sum(int(cells[i][j:j + 2], 16) for j in (1, 3, 5)) > 3 * 127 else WHITE
    st.session_state[f"probe-rgb-{i}"] = cells[i]


def picked(i: int) -> None:
    st.session_state[CELLS][i] = st.session_state[f"probe-rgb-{i}"]


def spec(cells: list[str]) -> str:
    """The trigger's name in a link."""
    if set(cells) <= {BLACK, WHITE}:
        return f"binary:{pattern_number(torch.tensor([c == WHITE for c in cells]))}"
    return "-".join(c[1:] for c in cells)


def cells_of(text: str) -> list[str] | None:
    """The nine colours a link's trigger names; None when it names none (a bad link)."""
    if not isinstance(text, str):
        return None
    if text.startswith("binary:"):
        try:
            trigger = parse_trigger(text)
        except MesaError:
            return None
        return colours(trigger) if tuple(trigger.shape) == (3, K, K) else None
    parts = text.lower().split("-")
    return ["#" + p for p in parts] if len(parts) == K * K and all(HEX.fullmatch(p) for p in parts) else None
