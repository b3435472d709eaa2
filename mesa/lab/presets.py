"""Presets: a whole lab configuration (attack, MESA search, defenses) as one JSON document, so a
class or a paper setting can be shared, exported from the app and imported back, validated first.

    {"name": "...", "description": "...",
     "attack":  {AttackConfig fields},
     "search":  {SearchConfig fields},
     "defense": {"methods": [...], plus DefenseConfig fields except method},
     "baseline": {BaselineConfig fields}   (optional: the pixel-SGD baseline, before the defenses)
     "census":   {CensusConfig fields}     (optional: the census each defense records)}
"""
import json
from dataclasses import fields
from pathlib import Path

from mesa.method.attack import AttackConfig
from mesa.method.baseline import BaselineConfig
from mesa.method.census import CensusConfig
from mesa.method.defense import DefenseConfig, parse_method
from mesa.errors import MesaError
from mesa.method.search import SearchConfig

PRESETS_DIR = Path(__file__).resolve().parents[2] / "assets" / "presets"
SECTIONS = {"attack": AttackConfig, "search": SearchConfig, "defense": DefenseConfig, "baseline": BaselineConfig,
            "census": CensusConfig}


def _check_section(name: str, section, cls) -> None:
    if not isinstance(section, dict):
        raise MesaError(f"preset section {name!r} must be an object, got {type(section).__name__}")
    allowed = {f.name for f in fields(cls)}
    if name == "defense":
        allowed = allowed - {"method"} | {"methods"}
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise MesaError(f"preset section {name!r} has unknown key(s) {', '.join(unknown)}; "
                        f"allowed: {', '.join(sorted(allowed))}")


def validate(preset) -> dict:
    """The preset itself when every section builds a valid config; a MesaError naming the fault otherwise."""
    if not isinstance(preset, dict):
        raise MesaError("a preset must be a JSON object with attack, search and defense sections")
    if not isinstance(preset.get("name", ""), str):
        raise MesaError("preset name must be a string")
    for name, cls in SECTIONS.items():
        _check_section(name, preset.get(name, {}), cls)
    try:
        attack_config(preset)
        search_config(preset)
        defense_configs(preset)
        baseline_config(preset)
        census_config(preset)
    except TypeError as e:
        raise MesaError(f"preset has a value of the wrong type: {e}") from None
    return preset


def parse(text: str | bytes) -> dict:
    """A validated preset from JSON text (an uploaded file)."""
    try:
        preset = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MesaError(f"the preset is not valid JSON ({e})") from None
    return validate(preset)


def dump(preset: dict) -> str:
    return json.dumps(validate(preset), indent=2)


def attack_config(preset: dict) -> AttackConfig:
    cfg = AttackConfig(**preset.get("attack", {}))
    if not 0 <= cfg.poison_ratio <= 1 or cfg.epochs < 1:
        raise MesaError("attack poison_ratio must be within [0, 1] and epochs >= 1")
    return cfg


def search_config(preset: dict) -> SearchConfig:
    return SearchConfig(**preset.get("search", {}))


def defense_configs(preset: dict) -> list[DefenseConfig]:
    section = dict(preset.get("defense", {}))
    methods = section.pop("methods", ["ensemble"])
    if not isinstance(methods, list) or not methods:
        raise MesaError("preset defense.methods must be a non-empty list, e.g. [\"ensemble\", \"mesa:0.9\"]")
    for m in methods:
        parse_method(m)
    return [DefenseConfig(method=m, **section) for m in methods]


def baseline_config(preset: dict) -> BaselineConfig | None:
    """The pixel-SGD baseline's settings, or None when the preset runs no baseline."""
    return BaselineConfig(**preset["baseline"]) if "baseline" in preset else None


def census_config(preset: dict) -> CensusConfig | None:
    return CensusConfig(**preset["census"]) if "census" in preset else None


def builtin(folder=PRESETS_DIR) -> dict[str, dict]:
    """{name: preset} for every assets/presets/*.json."""
    out = {}
    for f in sorted(Path(folder).glob("*.json")):
        try:
            preset = parse(f.read_text())
        except MesaError as e:
            raise MesaError(f"{f}: {e}") from None
        out[preset.get("name") or f.stem] = preset
    return out
