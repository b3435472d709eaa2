"""Neural Cleanse, registered: its inversion (every class's smallest full-image mask and pattern, saved
as K x 4 x H x W triggers, with the MAD anomaly index over their L1 norms that is its detection) and
its defense (retrain with the backdoor class's reversed trigger blended into the stamped fraction of
each batch, labels kept: the paper's unlearning). The algorithm is mesa/method/neural_cleanse.py."""
import torch

from mesa.errors import MesaError
from mesa.method.neural_cleanse import (ClassTrigger, NeuralCleanseConfig, NeuralCleanseResult, apply_trigger, judged,
                                        per_class_asr, reverse_triggers, with_asr)
from mesa.method.poison import Stamper
from mesa.method.registry import Defense, Inversion, register_defense, register_inversion
from mesa.method.retrain import retraining
from mesa.progress import ProgressFn, ignore


def reversed_set(model, images, labels, target, cfg: NeuralCleanseConfig, on_progress: ProgressFn = ignore,
                 should_stop=lambda: False) -> tuple[torch.Tensor, dict]:
    """The inversion's run (toward every class the model answers with; `target` unused): the triggers
    and the per-class report saved beside them."""
    if len(images) == 0:
        raise MesaError("Neural Cleanse needs images to reverse triggers on")
    with torch.no_grad():
        classes = model.eval()(images[:1].float() / 255).shape[1]
    result = judged(*reverse_triggers(model, images, list(range(classes)), cfg, on_progress, should_stop))
    return result.triggers, result.summary()


def detection(saved: dict, asr: torch.Tensor, labels: torch.Tensor) -> dict:
    """`detect --method neural-cleanse`: per class its mask's L1 norm, anomaly index and its trigger's
    held-out ASR; `suspect` is the flagged class (index > 2, below the median) with the largest index."""
    result = NeuralCleanseResult([ClassTrigger(**c) for c in saved["per_class"]], saved["median"], saved["mad"],
                                 saved["suspect"], saved["triggers"])
    summary = with_asr(result, asr, labels).summary()
    rows = [{"class": c.pop("label"), **c} for c in summary.pop("per_class")]
    return {"per_class": rows, **summary, "anomaly_index": rows[summary["smallest"]]["anomaly_index"],
            "evidence": "the anomaly index of the reversed masks' L1 norms",
            "score": {"key": "l1_norm", "label": "reversed mask's L1 norm (the smallest: the suspect)"}}


register_inversion(Inversion(
    "neural-cleanse", "neural-cleanse", NeuralCleanseConfig, reversed_set, gives="triggers",
    output="Neural Cleanse's reversed triggers", sweep_key=lambda s: {"seed": s.seed},
    sweep_config=lambda k: (NeuralCleanseConfig(**k), {}), measure=per_class_asr, command="baseline",
    needs_target=False, detection=detection,
    help="Neural Cleanse: per class, the smallest full-image mask and pattern; the MAD anomaly index of their "
         "L1 norms flags the backdoor's class"))


def stamps(inputs, cfg, param):
    """The backdoor class's reversed (mask, pattern), blended as x + m (p - x)."""
    if inputs.target >= len(inputs.made):
        raise MesaError(f"Neural Cleanse reversed {len(inputs.made)} classes, not the target {inputs.target}")
    trigger = inputs.made[inputs.target].to(inputs.modeling[0].device)
    stamper = Stamper(lambda x, g: apply_trigger(x, trigger[:1], trigger[1:]))
    return lambda _: stamper


register_defense(Defense("neural-cleanse", "Neural Cleanse's reversed trigger of the backdoor class, blended in",
                         retraining, uses="neural-cleanse", stamps=stamps, default="neural-cleanse"))
