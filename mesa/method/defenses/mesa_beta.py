"""The mesa:BETA defense: retrain with fresh samples of MESA's generator G_beta (one beta of its search)."""
from mesa.errors import MesaError
from mesa.method.generator import generator_sampler
from mesa.method.registry import Defense, register_defense
from mesa.method.retrain import retraining


def stamps(inputs, cfg, beta: float):
    found = inputs.made
    if beta not in found.by_beta:
        raise MesaError(f"no generator for beta={beta:g}: the search has {sorted(found.by_beta)}; run `search` first")
    sampler = generator_sampler(found.by_beta[beta].to(inputs.modeling[0].device), cfg.seed, found.noise)
    return lambda _: sampler


def choices(search_meta: dict) -> list[str]:
    """One per beta of the saved search (its search.json)."""
    return [f"mesa:{b['beta']:g}" for b in search_meta.get("betas", [])]


register_defense(Defense("mesa:BETA", "fresh samples from the generator G_beta", retraining, uses="mesa",
                         stamps=stamps, param=float, choices=choices, default="mesa:0.9"))
