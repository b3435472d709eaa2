"""Clean accuracy and attack success rate, batched, in eval mode."""
import torch

from mesa.method.intervals import rate_ci
from mesa.method.triggers import stamp


@torch.no_grad()
def predict(model, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted labels for uint8 or float images; restores the model's train/eval mode."""
    was_training = model.training
    model.eval()
    preds = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        x = x.float() / 255 if x.dtype == torch.uint8 else x
        preds.append(model(x).argmax(1))
    model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long, device=images.device)


def clean_accuracy(model, images, labels) -> float:
    return (predict(model, images) == labels).float().mean().item()


def attack_success_rate(model, images, labels, trigger, target: int, seed: int = 0, location=None) -> float:
    """Fraction of images NOT of the target class classified as the target once the trigger is
    stamped at a random location (fixed by the seed, so re-measuring gives the same number), or at
    the fixed (row, col) `location`."""
    keep = labels != target
    images = images[keep]
    if len(images) == 0:
        return float("nan")
    g = torch.Generator(device=images.device).manual_seed(seed)
    stamped = stamp(images, trigger.to(images.device), location, generator=g)
    return (predict(model, stamped) == target).float().mean().item()


def evaluate(model, images, labels, trigger=None, target: int | None = None, location=None,
             intervals: bool = True) -> dict:
    """Clean accuracy (and ASR), each with the images it was measured on and its 95% interval
    (`intervals`: False for the per-epoch curves, which plot the rates alone)."""
    metrics = {"clean_acc": clean_accuracy(model, images, labels)}
    if trigger is not None and target is not None:
        metrics["asr"] = attack_success_rate(model, images, labels, trigger, target, location=location)
    if not intervals:
        return metrics
    counts = {"clean_acc": len(labels), "asr": int((labels != target).sum()) if "asr" in metrics else 0}
    for key in list(metrics):
        metrics[f"{key}_images"], metrics[f"{key}_ci"] = counts[key], rate_ci(metrics[key], counts[key])
    return metrics
