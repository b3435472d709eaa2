"""The schema a preset (or a shared link's configuration) must fit: each key's type and range, before
any value reaches a config, a widget or a path. A preset comes from strangers (an uploaded file, a
crafted link), so its text is bounded in size and nesting before it is parsed, and `out` and `init`
may only name places inside the runs folder.

A check takes the value and returns None when it fits, else what is wrong (the caller names the key)."""
import json
import math
import re
from pathlib import PurePosixPath

from mesa.device import PRECISIONS
from mesa.errors import MesaError
from mesa.method.census import FAMILIES
from mesa.method.defense import parse_method
from mesa.models import ARCHITECTURES

MAX_CHARS = 64_000  # a preset's JSON text (the built-in ones are under 1,000)
MAX_DEPTH = 8  # {"census": {"location": [0, 0]}} is 3 deep
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')  # a JSON string literal (linear: the two branches never overlap)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")  # a run (folder) name: no separators, no leading dot


def loads(text: str | bytes, what: str = "the preset", max_chars: int = MAX_CHARS, max_depth: int = MAX_DEPTH):
    """json.loads of text from a stranger: its size and nesting are checked first (json.loads recurses
    once per level, so 3,000 levels would raise RecursionError), and every fault is one MesaError."""
    if len(text) > max_chars:
        raise MesaError(f"{what} is too large ({len(text):,} characters; at most {max_chars:,})")
    try:
        text = text.decode() if isinstance(text, bytes) else text
    except UnicodeDecodeError as e:
        raise MesaError(f"{what} is not UTF-8 text ({e.reason})") from None
    level = deepest = 0
    for ch in _STRING.sub("", text):
        if ch in "[{":
            level += 1
            deepest = max(deepest, level)
        elif ch in "]}":
            level -= 1
    if deepest > max_depth:
        raise MesaError(f"{what} is nested {deepest} levels deep; at most {max_depth}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise MesaError(f"{what} is not valid JSON ({e})") from None


def _show(value) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def integer(low: int, high: int, optional: bool = False):
    def check(v):
        if v is None and optional:
            return None
        if type(v) is not int:
            return f"must be a whole number, got {_show(v)}"
        return None if low <= v <= high else f"must be within {low}..{high}, got {v}"
    return check


def number(low: float, high: float, above_low: bool = False, below_high: bool = False, optional: bool = False):
    """A finite number in [low, high]; `above_low`, `below_high`: without that end."""
    def check(v):
        if v is None and optional:
            return None
        if type(v) not in (int, float) or not math.isfinite(v):
            return f"must be a finite number, got {_show(v)}"
        if (low < v if above_low else low <= v) and (v < high if below_high else v <= high):
            return None
        return f"must be within {'(' if above_low else '['}{low:g}, {high:g}{')' if below_high else ']'}, got {v:g}"
    return check


def text(limit: int = 200, choices=None, optional: bool = False, form: tuple[str, str] | None = None):
    """A string of at most `limit` characters: one of `choices`, or matching `form` (regex, what it reads)."""
    def check(v):
        if v is None and optional:
            return None
        if not isinstance(v, str):
            return f"must be a string, got {_show(v)}"
        if len(v) > limit:
            return f"must be at most {limit:,} characters, got {len(v):,}"
        if choices is not None and v not in choices:
            return f"must be one of {', '.join(choices)}, got {_show(v)}"
        return None if form is None or re.fullmatch(form[0], v) else f"must be {form[1]}, got {_show(v)}"
    return check


def flag(v):
    return None if isinstance(v, bool) else f"must be true or false, got {_show(v)}"


def items(each, low: int, high: int, optional: bool = False):
    """A list of `low`..`high` entries, each passing `each`."""
    def check(v):
        if v is None and optional:
            return None
        if not isinstance(v, list) or not low <= len(v) <= high:
            return f"must be a list of {low} to {high} entries, got {_show(v)}"
        return next((f"[{i}] {why}" for i, e in enumerate(v) if (why := each(e))), None)
    return check


def defense(v):
    """A defense of mesa/method/registry.py, as typed ("mesa:0.9")."""
    if (why := text(40)(v)) is not None:
        return why
    try:
        parse_method(v)
    except MesaError as e:
        return f"is not a defense: {str(e)[:200]}"
    return None


def in_runs(optional: bool = True):
    """A name or relative path inside the runs folder: a preset never points outside it."""
    def check(v):
        if v is None and optional:
            return None
        if not isinstance(v, str) or not all(_NAME.fullmatch(p) for p in PurePosixPath(v).parts) or len(v) > 200:
            return f"must name a folder inside the runs folder (no '/' at the start, no '..'), got {_show(v)}"
        return None
    return check


# Where the app has a widget for a key, its bounds are the widget's, so any valid preset can be shown.
EPOCHS, BATCH, SEED = integer(1, 200), integer(1, 65_536), integer(0, 10**6)
RATIO, MOMENTUM, LR = number(0, 1), number(0, 1), number(0, 10, above_low=True)
DATA = (r"synthetic(100)?(:\d+)?|cifar10|cifar100|folder:.+", "synthetic[100][:N], cifar10, cifar100 or folder:PATH")
LOCATION, TRIGGER_SIZE, PRECISION = text(40, optional=True), integer(1, 32), text(choices=PRECISIONS)
TOP = {"name": text(200), "description": text(2_000)}
SECTIONS = {
    "attack": {"data": text(1_000, form=DATA), "model": text(40, choices=tuple(ARCHITECTURES)),
               "trigger": text(1_000), "target": integer(0, 999), "poison_ratio": RATIO, "epochs": integer(1, 500),
               "init": in_runs(), "lr": number(0, 10, above_low=True, optional=True),
               "batch_size": integer(1, 65_536, optional=True), "train_images": integer(1, 10**7, optional=True),
               "seed": SEED, "location": text(40), "device": text(20), "out": in_runs(), "precision": PRECISION},
    "search": {"betas": items(number(0, 1, True, True), 1, 16), "alpha": number(0, 10), "epochs": EPOCHS,
               "batch_size": BATCH, "lr": LR, "noise_std": number(0, 100), "noise_dim": integer(1, 4_096),
               "noise": text(choices=("uniform", "gaussian")), "hidden": integer(1, 16_384, optional=True),
               "mine_rate": number(0, 1), "trigger_size": TRIGGER_SIZE, "seed": SEED,
               "log_every": integer(1, 10**6), "snapshot_size": integer(1, 4_096), "location": LOCATION,
               "precision": PRECISION},
    "defense": {"methods": items(defense, 1, 16), "epochs": EPOCHS, "poison_ratio": RATIO, "lr": LR,
                "momentum": MOMENTUM, "batch_size": BATCH, "restarts": integer(1, 1_000, optional=True),
                "augment": flag, "location": LOCATION, "seed": SEED, "precision": PRECISION},
    "baseline": {"restarts": integer(1, 1_000), "steps": integer(1, 100_000), "images_per_restart": integer(1, 4_096),
                 "lr": LR, "momentum": MOMENTUM, "trigger_size": TRIGGER_SIZE, "seed": SEED, "location": LOCATION,
                 "log_every": integer(1, 10**6)},
    "census": {"family": text(choices=FAMILIES), "trigger_size": integer(1, 32, optional=True),
               "samples": integer(1, 100_000, optional=True), "images": integer(1, 100_000), "seed": SEED,
               "location": items(integer(0, 1_023), 2, 2, optional=True), "exhaustive": flag},
}
KNOWN_CLASSES = {"synthetic": 10, "cifar10": 10, "synthetic100": 100, "cifar100": 100}


def _unknown(label: str, value: dict, allowed) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:  # names cut short: a crafted key may be long
        raise MesaError(f"{label} has unknown key(s) {', '.join(k[:40] for k in unknown[:10])}; "
                        f"allowed: {', '.join(allowed)}")


def check(preset) -> None:
    """Raise a MesaError naming the first key that does not fit the schema (type, range, place)."""
    if not isinstance(preset, dict):
        raise MesaError("a preset must be a JSON object with attack, search and defense sections")
    _unknown("preset", preset, [*TOP, *SECTIONS])
    for name, schema in SECTIONS.items():
        section = preset.get(name, {})
        if not isinstance(section, dict):
            raise MesaError(f"preset section {name!r} must be an object, got {_show(section)}")
        _unknown(name, section, schema)
    for where, value, schema in [("", preset, TOP)] + [(f"{n}.", preset.get(n, {}), s) for n, s in SECTIONS.items()]:
        for key, fits in schema.items():
            if key in value and (why := fits(value[key])):  # why: "[2] must be ..." for a list's entry
                raise MesaError(f"preset {where}{key}{'' if why.startswith('[') else ' '}{why}")
    attack = {"data": "synthetic", "target": 0, **preset.get("attack", {})}  # AttackConfig's defaults
    classes = KNOWN_CLASSES.get(attack["data"].split(":")[0])
    if classes and attack["target"] >= classes:
        raise MesaError(f"preset attack.target {attack['target']} is out of range: {attack['data']} has classes "
                        f"0..{classes - 1}")
