"""What a sweep runs: its settings, and the cases (data x model x trigger x target) they expand to."""
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mesa.image_folder import list_folder
from mesa.method.census import MAX_SAMPLES, CensusConfig
from mesa.method import registry
from mesa.method.defense import STAMPED, parse_method
from mesa.errors import MesaError
from mesa.method.triggers import canonical_patterns, parse_trigger

# the paper attacks with 10 epochs, SGD lr 1e-3 and 1% poison (ResNet-18). On CIFAR-10 with the small
# model, 1% reached ASR 0.890 (below the paper's "above 0.92"), so the bench measured 3 epochs at
# lr 0.01 with 3% poison instead (docs/RESULTS.md): these are the defaults; the paper's are one flag away.
PAPER_ATTACK = {"attack_epochs": 10, "attack_lr": 1e-3, "attack_poison_ratio": 0.01}
# The attack recipes a sweep knows, each a set of settings over the defaults; a case attacked with
# another recipe than ours is a case of its own, kept beside ours. The paper's planted no backdoor in
# the small model (ASR 0.067, docs/RESULTS.md); "ours-1pct" is ours at the paper's 1% poison, to tell
# the poison rate apart from the learning rate in the 1% question.
ATTACK_RECIPES = {"ours": {}, "paper": PAPER_ATTACK, "ours-1pct": {"attack_poison_ratio": 0.01}}
MAX_CASES = 1000  # the 51 canonical patterns x a few targets and data sets fit; 100,000 is a mistake


@dataclass
class SweepConfig:
    out: str  # the sweep's folder: runs, per-case stages and logs, the results table
    data: list[str] = field(default_factory=lambda: ["synthetic"])
    models: list[str] = field(default_factory=lambda: ["small"])
    triggers: list[str] = field(default_factory=lambda: ["canonical"])
    targets: list[int] = field(default_factory=lambda: [0])  # one for every trigger, or one per trigger
    base: str | None = None  # a clean base run to fine-tune; None: the model's shipped base (mesa/lab/storage/bases.py) or one trained here
    base_epochs: int = 10  # the clean base, from scratch, when none is given or shipped
    attack_epochs: int = 3  # the attack fine-tunes the base (see PAPER_ATTACK for why not 10)
    attack_lr: float = 0.01
    attack_poison_ratio: float = 0.03
    attack_recipe: str = "ours"  # or another of ATTACK_RECIPES: its settings, its cases and tables kept apart
    search_epochs: int = 10
    betas: list[float] = field(default_factory=lambda: [0.5, 0.8, 0.9])
    samples: int = 256  # triggers sampled per beta to measure
    restarts: int = 5  # pixel-SGD baseline (the paper's 10, halved for time as the CIFAR bench)
    baseline_steps: int = 300
    defenses: list[str] = field(default_factory=registry.default_defenses)  # mesa/method/registry.py
    defense_epochs: int = 10
    defense_poison_ratio: float = STAMPED
    defense_augment: bool = True  # crop + flip while retraining (the reference code retrains without)
    census: str | None = "binary"  # the trigger family of the census (binary or color), None for none
    census_samples: int | None = None
    census_images: int = 256
    batch_size: int = 128  # the base's and the attack's
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        if self.attack_recipe not in ATTACK_RECIPES:
            raise MesaError(f"unknown attack recipe {self.attack_recipe!r}: use one of {', '.join(ATTACK_RECIPES)}")
        for name, value in ATTACK_RECIPES[self.attack_recipe].items():
            setattr(self, name, value)
        for method in self.defenses:
            parse_method(method)
        if self.census not in ("binary", "color", None):
            raise MesaError(f"unknown census family {self.census!r}: use binary, color or none")
        if min(self.base_epochs, self.attack_epochs, self.search_epochs, self.defense_epochs) < 1:
            raise MesaError("every stage needs at least 1 epoch")
        if not 1 <= self.samples <= MAX_SAMPLES:
            raise MesaError(f"--samples must be 1..{MAX_SAMPLES}, not {self.samples}")
        if self.census is not None:  # its caps, before any case starts
            CensusConfig(family=self.census, samples=self.census_samples, images=self.census_images)

    def to_dict(self) -> dict:
        return asdict(self)


def attack_variant(cfg: SweepConfig) -> str:
    """'' for our attack recipe; 'paper-attack' for the reference code's (and so on). A case attacked
    another way is a case of its own, on the same clean base, kept beside ours (the 1% question compares them)."""
    return "" if cfg.attack_recipe == "ours" else f"{cfg.attack_recipe}-attack"


def defense_variant(cfg: SweepConfig) -> str:
    """'' for the default stamped fraction with augmentation; else a suffix naming the variant, so the
    defenses at 0.01 or without augmentation are saved beside those at the default, not over them."""
    parts = [f"p{cfg.defense_poison_ratio:g}"] if cfg.defense_poison_ratio != STAMPED else []
    parts += [] if cfg.defense_augment else ["noaug"]
    return slug("defense", *parts) if parts else ""


def suffix(*variants: str) -> str:
    return "".join(f"-{v}" for v in variants if v)


def slug(*parts) -> str:
    """A folder name from parts joined by '-', each run of characters other than letters, digits and '.'
    replaced by '_' (binary:170 -> binary_170)."""
    return "-".join(re.sub(r"[^A-Za-z0-9.]+", "_", str(p)).strip("_") for p in parts)


@dataclass(frozen=True)
class Case:
    data: str
    model: str
    trigger: str
    target: int

    @property
    def key(self) -> str:
        return slug(self.data, self.model, self.trigger, f"t{self.target}")

    @property
    def label(self) -> str:
        return f"{self.trigger} -> {self.target}"


def expand_triggers(specs: list[str]) -> list[str]:
    """`canonical[:K]` (the canonical K x K black-white patterns, 51 for 3x3), `KIND:A-B[:K]` (a range
    of binary patterns or colour seeds), or any single trigger; commas separate several."""
    out = []
    for spec in (s.strip() for arg in specs for s in arg.split(",") if s.strip()):
        kind, _, rest = spec.partition(":")
        if kind == "canonical":
            k = int(rest) if rest.isdigit() else 3 if not rest else None
            if k is None:
                raise MesaError(f"bad trigger set {spec!r}: use canonical or canonical:K")
            out += [f"binary:{n}" + (f":{k}" if k != 3 else "") for n in canonical_patterns(k)]
            continue
        span = re.fullmatch(r"(binary|color):(\d+)-(\d+)(:\d+)?", spec)
        if span:
            first, last = int(span[2]), int(span[3])
            if last < first:
                raise MesaError(f"bad trigger range {spec!r}: {first} > {last}")
            if last - first + 1 > MAX_CASES:
                raise MesaError(f"trigger range {spec!r} holds {last - first + 1} triggers: a sweep plans at most {MAX_CASES} cases")
            out += [f"{span[1]}:{i}{span[4] or ''}" for i in range(first, last + 1)]
            continue
        parse_trigger(spec)  # a bad single trigger is the user's error, before any work starts
        out.append(spec)
    if not out:
        raise MesaError("no triggers to sweep")
    return list(dict.fromkeys(out))


def plan_cases(cfg: SweepConfig) -> list[Case]:
    """Every data x model x (trigger, target); targets: one for all triggers, or one per trigger."""
    triggers = expand_triggers(cfg.triggers)
    if len(cfg.targets) == 1:
        targets = cfg.targets * len(triggers)
    elif len(cfg.targets) == len(triggers):
        targets = cfg.targets
    else:
        raise MesaError(f"{len(cfg.targets)} targets for {len(triggers)} triggers: give one target, or one per trigger")
    cases = len(cfg.data) * len(cfg.models) * len(triggers)
    if cases > MAX_CASES:
        raise MesaError(f"the sweep plans {cases} cases: at most {MAX_CASES}; sweep fewer triggers, targets or data")
    for data in cfg.data:
        n = class_count(data)
        bad = [t for t in targets if n is not None and not 0 <= t < n]
        if bad:
            raise MesaError(f"target class {bad[0]} out of range: {data} has classes 0..{n - 1}")
    return [Case(d, m, t, target) for d in cfg.data for m in cfg.models for t, target in zip(triggers, targets)]


def class_count(spec: str) -> int | None:
    """How many classes a data source has, without loading it (a folder: its class folders); None
    for a source it does not know (its clean base fails, and says why)."""
    name = spec.partition(":")[0]
    if name in ("synthetic", "cifar10", "synthetic100", "cifar100"):
        return 100 if name.endswith("100") else 10
    if name == "folder":
        return len(list_folder(Path(spec[len("folder:"):]).expanduser())["train"])
    return None
