"""The original defense: retrain with the attacker's true trigger, the ideal a defense can hope for."""
from mesa.method.poison import fixed_sampler
from mesa.method.registry import Defense, register_defense
from mesa.method.retrain import retraining


def stamps(inputs, cfg, param):
    sampler = fixed_sampler(inputs.trigger.to(inputs.modeling[0].device))
    return lambda _: sampler


register_defense(Defense("original", "the attacker's true trigger (the ideal a defense can hope for)", retraining,
                         needs_trigger=True, stamps=stamps))
