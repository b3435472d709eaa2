"""The two registries: inversion methods (they reverse a backdoor's triggers) and defenses (they
remove it). Each method registers itself once, in its own file; the CLI's choices, the sweep's
stages and cache keys, the presets, the pages and the machine lock read these lists, so a new
method is one new file plus its line in MODULES.

A defense that retrains with an inversion method's triggers names that method (`uses`): the sweep
keys the defense on that method's settings, so a changed inversion redoes every defense made from it.
A stamping defense runs mesa/method/retrain.py's `retraining` with its `stamps`; one that is not
retraining with stamped triggers (unlearning, say) gives its own `run`."""
import importlib
from dataclasses import dataclass
from typing import Any, Callable

from mesa.errors import MesaError

# the files that register methods, in the order lists show them (the search before the baseline)
MODULES = ("mesa.method.search", "mesa.method.baseline", "mesa.method.defenses.ensemble",
           "mesa.method.defenses.mesa_beta", "mesa.method.defenses.pixel_sgd", "mesa.method.defenses.neural_cleanse",
           "mesa.method.defenses.unlearn", "mesa.method.defenses.original", "mesa.method.defenses.finetune")


@dataclass(frozen=True)
class Inversion:
    """An inversion method. Its `stage` names its pipeline and sweep stage and its saved set in a run
    (mesa/STAGE.json); `command` the CLI command that runs it (with --method when several share one)."""
    name: str  # as typed: "mesa"
    stage: str  # "search", "baseline"
    config: type  # its config dataclass
    run: Callable  # the engine: (model, images, labels, target, cfg, ...) -> what it found
    gives: str  # what a defense made from it receives: "generators" ({beta: G}, a GeneratorSet) or "triggers"
    output: str  # that, in words: "MESA's generators"
    sweep_key: Callable[[Any], dict]  # the sweep's settings -> what its sweep stage depends on (its cache key)
    sweep_config: Callable[[dict], tuple[Any, dict]]  # that key -> (its config, the stage's other options)
    help: str
    # "triggers" not stamped as patches (a full-image mask and pattern): each one's held-out ASR,
    # (model, images, labels, triggers, target, location) -> N rates; None: patches (per_trigger_asr)
    measure: Callable | None = None
    command: str = ""  # its CLI command; "": its stage's name
    needs_target: bool = True  # it works toward the backdoor's class (one that reverses every class: no)
    # its saved set gives a detection (per class, the suspect): (its saved JSON, per-trigger ASR, the
    # held-out labels they were measured on) -> `detect --method NAME`'s report; None: it gives none
    detection: Callable | None = None

    def __post_init__(self):
        if not self.command:
            object.__setattr__(self, "command", self.stage)


@dataclass(frozen=True)
class Defense:
    """A defense. A family takes a parameter after ':' ("mesa:BETA": `param` parses the part after ':')."""
    name: str  # "ensemble", "mesa:BETA"
    help: str
    run: Callable  # (entry, param, model, DefenseInputs, DefenseConfig, on_progress, should_stop, inspect) -> Defended
    uses: str | None = None  # the inversion method whose output it needs (and the sweep keys it on)
    needs_trigger: bool = False  # it needs the planted trigger (original)
    per_trigger: bool = False  # one defended model per trigger of `uses`: none kept, one census each
    stamps: Callable | None = None  # for `retraining`: (DefenseInputs, cfg, param) -> epoch -> Sampler, Stamper or None
    param: Callable[[str], Any] | None = None  # a family's parameter, parsed (raises ValueError when bad)
    choices: Callable[[dict], list[str]] | None = None  # a family's instances from its `uses` saved JSON
    default: str | None = None  # the instance sweeps and presets run by default ("mesa:0.9"); None: not by default
    headline: bool = False  # runs first in a sweep: the table's headline number

    @property
    def family(self) -> str:
        return self.name.partition(":")[0]


_INVERSIONS: dict[str, Inversion] = {}
_DEFENSES: dict[str, Defense] = {}
_loaded = False


def register_inversion(entry: Inversion) -> Inversion:
    _INVERSIONS[entry.name] = entry
    return entry


def register_defense(entry: Defense) -> Defense:
    _DEFENSES[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    """Drop a method (tests register toys)."""
    _DEFENSES.pop(name, None)
    _INVERSIONS.pop(name, None)


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in MODULES:
            importlib.import_module(module)


def inversions() -> dict[str, Inversion]:
    _load()
    return dict(_INVERSIONS)


def defenses() -> dict[str, Defense]:
    _load()
    return dict(_DEFENSES)


def inversion(name: str) -> Inversion:
    found = inversions().get(name)
    if found is None:
        raise MesaError(f"unknown inversion method {name!r}: use {', '.join(inversions())}")
    return found


def inversion_for(cfg) -> Inversion:
    """The inversion method whose config `cfg` is (a stage is told which method by its config)."""
    found = next((e for e in inversions().values() if isinstance(cfg, e.config)), None)
    if found is None:
        raise MesaError(f"no inversion method takes a {type(cfg).__name__}")
    return found


def run_by(command: str) -> list[str]:
    """The inversion methods the CLI command `command` runs (`baseline --method NAME`)."""
    return [name for name, e in inversions().items() if e.command == command]


def defense(method: str) -> tuple[Defense, Any]:
    """(entry, parameter) of a defense as typed: ("mesa:BETA" entry, 0.9) for "mesa:0.9"."""
    known = defenses()
    family, colon, rest = method.partition(":")
    entry = known.get(method) if not colon else next((d for d in known.values() if d.param and d.family == family), None)
    if entry is None:
        raise MesaError(f"unknown defense {method!r}: use {', '.join(known)}")
    if entry.param is None:
        return entry, None
    try:
        return entry, entry.param(rest)
    except ValueError:
        raise MesaError(f"bad method {method!r}: expected {entry.name}, e.g. {entry.default or entry.name}") from None


def defense_names() -> list[str]:
    """Every defense as a user types it ("mesa:BETA" for a family): the CLI's choices and help."""
    return list(defenses())


def default_defenses() -> list[str]:
    """The defenses a sweep or a preset runs when not told: the headline first."""
    entries = sorted(defenses().values(), key=lambda d: not d.headline)
    return [d.default for d in entries if d.default]


def headline() -> str:
    """The defense run when none is named (the CLI's, a preset's): the table's headline."""
    return next(d.default for d in defenses().values() if d.headline)


def is_per_trigger(method: str) -> bool:
    """Whether a saved defense made one model per trigger (kept as METHOD-I); False for one this code no longer knows."""
    try:
        return defense(method)[0].per_trigger
    except MesaError:
        return False


def heavy_commands() -> set[str]:
    """The CLI commands that train or measure models (they take the machine's turn): every inversion's stage too."""
    return {"attack", "defend", "detect", "census", "sweep", "demo", "import"} | {i.command for i in inversions().values()}
