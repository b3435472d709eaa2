"""Defenses: what they are given, their settings and their result, and `defend`, which runs one by
its registered entry (mesa/method/registry.py; each defense is one file in mesa/method/defenses/).
Most retrain the backdoored model on the defender's images, stamping a fraction of each batch with
triggers while KEEPING their true labels, so the model unlearns trigger -> target (mesa/method/retrain.py)."""
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

from mesa.errors import MesaError
from mesa.method import registry
from mesa.method.metrics import evaluate
from mesa.method.triggers import parse_location
from mesa.progress import ProgressFn, ignore
from mesa.train import TrainConfig

STAMPED = 0.5  # the stamped fraction of each batch: the best of 0.01-0.5 measured on CIFAR-10 (docs/RESULTS.md)


@dataclass
class DefenseConfig:
    method: str = field(default_factory=registry.headline)  # a defense of mesa/method/registry.py
    epochs: int = 10
    poison_ratio: float = STAMPED
    lr: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 128
    restarts: int | None = None  # a per-trigger defense: how many of its triggers (default: all)
    augment: bool = True  # crop + flip; the paper's reference code retrains without augmentation
    location: str | None = None  # where triggers are stamped: random or fixed:ROW,COL (stages: the run's)
    precision: str = "auto"  # bf16 autocast where the device runs it natively, or fp32 / bf16
    seed: int = 0

    def __post_init__(self):
        if not 0 <= self.poison_ratio <= 1:
            raise MesaError(f"poison ratio {self.poison_ratio} must be within [0, 1]")
        if self.epochs < 1:
            raise MesaError("defense epochs must be >= 1")
        parse_method(self.method)

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, schedule="constant",
                           momentum=self.momentum, weight_decay=0.0, seed=self.seed, augment=self.augment,
                           precision=self.precision)

    def to_dict(self) -> dict:
        return asdict(self)


def parse_method(method: str) -> tuple[str, Any]:
    """(family, parameter): ('mesa', 0.9) for 'mesa:0.9'; (name, None) for the others."""
    entry, param = registry.defense(method)
    return entry.family, param


@dataclass
class DefenseInputs:
    """What a defense may use: the planted trigger (measured before and after, when the run knows it),
    the defender's split, and `made`: the output of the inversion method the defense `uses`."""
    trigger: torch.Tensor | None
    target: int
    modeling: tuple  # (images, labels): the defender's 80%
    held_out: tuple  # the 20% measured on
    made: Any = None  # a GeneratorSet (MESA's search), the baseline's triggers, or None when not saved


@dataclass
class Defended:
    """What a defense's run gives back: the defended model (None for a per-trigger defense, which
    gives one copy per trigger in `copies`) and its held-out metrics, history and inspections."""
    model: torch.nn.Module | None
    after: dict
    history: list[dict]
    worst_asr: float | None = None  # a per-trigger defense's highest; else the after's ASR
    per_trigger: list[dict] | None = None  # each copy's held-out metrics
    histories: list[list[dict]] | None = None
    inspections: list = field(default_factory=list)  # inspect(model, index) of each defended model
    copies: list = field(default_factory=list)  # a per-trigger defense's defended models, in trigger order


@dataclass
class DefenseResult:
    """A defense's outcome; to_dict() is the JSON a run keeps (mesa/defense-METHOD.json)."""
    method: str
    config: dict
    before: dict
    after: dict
    worst_asr: float | None
    history: list[dict]
    per_trigger: list[dict] | None = None  # "restarts" in the JSON
    histories: list[list[dict]] | None = None
    inspections: list = field(default_factory=list)  # not saved: the pipeline makes its census of them
    copies: list = field(default_factory=list)  # a per-trigger defense's models: saved beside, not in the JSON
    seconds: float = 0.0
    census: dict | None = None
    samples_asr: dict | None = None  # MESA's samples' ASR before and after: for a run with no planted trigger

    def to_dict(self) -> dict:
        out = {"method": self.method, "config": self.config, "before": self.before, "after": self.after,
               "worst_asr": self.worst_asr}
        if self.per_trigger is not None:
            out["restarts"] = self.per_trigger
        out["history"] = self.history
        if self.histories is not None:
            out["histories"] = self.histories
        out["seconds"] = self.seconds
        for key in ("census", "samples_asr"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def check_inputs(method: str, inputs: DefenseInputs) -> None:
    """A clear line when the defense lacks what it needs (the run must be searched, say)."""
    entry, _ = registry.defense(method)
    if entry.uses is not None and (inputs.made is None or len(inputs.made) == 0):
        made_by = registry.inversion(entry.uses)
        named = f" --method {made_by.name}" if len(registry.run_by(made_by.command)) > 1 else ""
        raise MesaError(f"{method} defense needs {made_by.output}: run `{made_by.command}{named}` first")
    if entry.needs_trigger and inputs.trigger is None:
        raise MesaError(f"the run has no planted trigger: `{method}` needs one (import with --trigger)")


def defend(model, inputs: DefenseInputs, cfg: DefenseConfig, on_progress: ProgressFn = ignore,
           should_stop=lambda: False, inspect: Callable | None = None) -> tuple[DefenseResult, torch.nn.Module | None]:
    """Run one defense: (its result, measured on the held-out split before and after; the defended
    model, None for a per-trigger defense, whose copies are the result's). `inspect(model, index)` looks at each defended model before it is
    dropped (the census of what it leaves open; index: the trigger's for a per-trigger defense, else None)."""
    entry, param = registry.defense(cfg.method)
    check_inputs(cfg.method, inputs)
    start = time.time()
    before = evaluate(model, *inputs.held_out, inputs.trigger, inputs.target, parse_location(cfg.location))
    out = entry.run(entry, param, model, inputs, cfg, on_progress, should_stop, inspect)
    worst = out.worst_asr if out.per_trigger is not None else out.after.get("asr")
    return DefenseResult(cfg.method, cfg.to_dict(), before, out.after, worst, out.history, out.per_trigger,
                         out.histories, out.inspections, out.copies, round(time.time() - start, 1)), out.model
