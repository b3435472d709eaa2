"""The ensemble defense: retrain with fresh samples of every G_beta of MESA's search, one generator per
epoch, cycled highest beta first. The headline of the paper's table."""
from mesa.method.generator import generator_sampler
from mesa.method.registry import Defense, register_defense
from mesa.method.retrain import retraining


def stamps(inputs, cfg, param):
    found = inputs.made
    device = inputs.modeling[0].device
    samplers = [generator_sampler(found.by_beta[b].to(device), cfg.seed + i, found.noise)
                for i, b in enumerate(sorted(found.by_beta, reverse=True))]
    return lambda epoch: samplers[epoch % len(samplers)]


register_defense(Defense("ensemble", "G of every beta, cycled from epoch to epoch (highest beta first)", retraining,
                         uses="mesa", stamps=stamps, default="ensemble", headline=True))
