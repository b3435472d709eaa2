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
from dataclasses import replace
from pathlib import Path

from mesa.method.attack import SHIPPED, AttackConfig
from mesa.method.baseline import BaselineConfig
from mesa.method.census import CensusConfig
from mesa.method import registry
from mesa.method.defense import DefenseConfig
from mesa.errors import MesaError
from mesa.lab.pipeline import preset_schema
from mesa.lab.storage.runs import runs_root
from mesa.method.search import SearchConfig
from mesa.resources import resource
from mesa.method.triggers import parse_location

PRESETS_DIR = resource("presets")
CLASSROOM_DEMO = "CPU classroom demo"  # the one-click demo on the embedded data
LIVE_DEMO = "CIFAR-10 live demo"  # the same, on real images, from the shipped clean base


def validate(preset) -> dict:
    """The preset itself when it fits the schema (preset_schema.py) and every section builds a valid
    config; a MesaError naming the fault otherwise."""
    preset_schema.check(preset)
    attack_config(preset)
    search_config(preset)
    defense_configs(preset)
    baseline_config(preset)
    census_config(preset)
    for name in ("attack", "search", "defense", "baseline"):  # the census's location is [ROW, COL]
        parse_location(preset.get(name, {}).get("location"))
    return preset


def parse(text: str | bytes, what: str = "the preset") -> dict:
    """A validated preset from JSON text (an uploaded file, a link), bounded in size and depth first."""
    return validate(preset_schema.loads(text, what))


def dump(preset: dict) -> str:
    return json.dumps(validate(preset), indent=2)


def attack_config(preset: dict) -> AttackConfig:
    """`init` and `out` name places inside the runs folder (the schema allows no other); `init` may
    also be SHIPPED, the clean base that ships with the engine."""
    cfg = AttackConfig(**preset.get("attack", {}))
    inside = {k: str(runs_root() / v) for k in ("init", "out") if (v := getattr(cfg, k))
              and (k, v) != ("init", SHIPPED)}
    return replace(cfg, **inside)


def attack_with_choices(attack: dict, chosen: dict, from_shipped_base: bool) -> dict:
    """The preset's attack section with a page's choices laid over it: what the page does not show
    (lr, batch size, location, training images, a base run) is kept, not dropped. `from_shipped_base`:
    fine-tune the clean base that ships; otherwise the preset's own base run, if any, or from scratch."""
    own_base = attack.get("init") if attack.get("init") != SHIPPED else None
    merged = {**attack, **chosen, "init": SHIPPED if from_shipped_base else own_base}
    return {k: v for k, v in merged.items() if v is not None}


def search_config(preset: dict) -> SearchConfig:
    return SearchConfig(**preset.get("search", {}))


def defense_configs(preset: dict) -> list[DefenseConfig]:
    section = dict(preset.get("defense", {}))
    methods = section.pop("methods", [registry.headline()])  # each checked by the schema (preset_schema.defense)
    return [DefenseConfig(method=m, **section) for m in methods]


def baseline_config(preset: dict) -> BaselineConfig | None:
    """The pixel-SGD baseline's settings, or None when the preset runs no baseline."""
    return BaselineConfig(**preset["baseline"]) if "baseline" in preset else None


def census_config(preset: dict) -> CensusConfig | None:
    return CensusConfig(**preset["census"]) if "census" in preset else None


def builtin(folder=PRESETS_DIR) -> dict[str, dict]:
    """{name: preset} for every shipped preset (assets/presets/*.json in a clone)."""
    out = {}
    for f in sorted(Path(folder).glob("*.json")):
        try:
            preset = parse(f.read_text())
        except MesaError as e:
            raise MesaError(f"{f}: {e}") from None
        out[preset.get("name") or f.stem] = preset
    return out


def live_data(spec: str) -> str:
    """The data a live demo runs on: cifar10 (torchvision's copy, downloaded if absent) or
    folder:PATH (a CIFAR-10 copy as class folders); one line when the folder is not there."""
    if spec == "cifar10":
        return spec
    if not spec.startswith("folder:"):
        raise MesaError(f"the live demo runs on CIFAR-10: --data cifar10 or folder:PATH, not {spec[:200]!r}")
    given = spec[len("folder:"):]
    if not given.strip() or not Path(given).expanduser().is_dir():
        raise MesaError(f"no CIFAR-10 folder at {given[:200]!r}: give a folder with train/ and test/ class folders, "
                        "or cifar10 to download it")
    return "folder:" + str(Path(given).expanduser())
