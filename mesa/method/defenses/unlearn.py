"""The unlearn defense: gradient ascent on MESA's samples toward the target, bounded by a clean loss
(BAERASER's unlearning from a trigger distribution; the algorithm is mesa/method/unlearn.py). It
samples the highest beta's generator: its triggers are the surest to fire, and ascent on a trigger
that does not fire unlearns nothing. The stamped share of each batch is the defense's poison ratio."""
from mesa.errors import MesaError
from mesa.method.defense import Defended
from mesa.method.generator import generator_sampler
from mesa.method.metrics import evaluate
from mesa.method.registry import Defense, register_defense
from mesa.method.triggers import parse_location
from mesa.method.unlearn import UnlearnConfig, unlearn


def unlearning(entry, param, model, inputs, cfg, on_progress, should_stop, inspect=None) -> Defended:
    if cfg.poison_ratio <= 0:
        raise MesaError("unlearning needs a stamped share above 0 (--poison-ratio)")
    found = inputs.made
    beta = max(found.by_beta)
    sampler = generator_sampler(found.by_beta[beta].to(inputs.modeling[0].device), cfg.seed, found.noise)
    settings = UnlearnConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, ratio=cfg.poison_ratio, lr=cfg.lr,
                             momentum=cfg.momentum, augment=cfg.augment, location=cfg.location,
                             precision=cfg.precision, seed=cfg.seed)
    location = parse_location(cfg.location)

    def measure(m, intervals=False):
        return evaluate(m, *inputs.held_out, inputs.trigger, inputs.target, location, intervals)

    model, history = unlearn(model, *inputs.modeling, sampler, inputs.target, settings, measure, on_progress,
                             should_stop)
    return Defended(model, measure(model, True), history, inspections=[inspect(model, None)] if inspect else [])


register_defense(Defense("unlearn", "gradient ascent on MESA's samples (highest beta) toward the target, "
                         "bounded by a clean loss (BAERASER)", unlearning, uses="mesa", default="unlearn"))
