"""The pixel-sgd defense: retrain with one reversed trigger of the pixel-SGD baseline, one defended
copy of the model per baseline restart, each kept (pixel-sgd-1, -2, ...) with its census."""
from mesa.method.poison import fixed_sampler
from mesa.method.registry import Defense, register_defense
from mesa.method.retrain import retraining


def stamps(inputs, cfg, param):
    sampler = fixed_sampler(inputs.made.to(inputs.modeling[0].device))  # made: one of the baseline's triggers
    return lambda _: sampler


register_defense(Defense("pixel-sgd", "one reversed trigger; each baseline restart defends its own copy of the model",
                         retraining, uses="pixel-sgd", per_trigger=True, stamps=stamps, default="pixel-sgd"))
