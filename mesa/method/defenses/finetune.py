"""The finetune defense: retrain with no trigger at all, the control (plain fine-tuning does not
remove the backdoor)."""
from mesa.method.registry import Defense, register_defense
from mesa.method.retrain import retraining


def stamps(inputs, cfg, param):
    return lambda _: None


register_defense(Defense("finetune", "no trigger at all (the control: plain fine-tuning does not remove the backdoor)",
                         retraining, stamps=stamps, default="finetune"))
