import torch
from torch import nn

from mesa.method.metrics import attack_success_rate, clean_accuracy
from mesa.models import build_model


class WhitePatchDetector(nn.Module):
    """Hand-made backdoored model: says `target` when a white pixel is present, else the label
    encoded in the image's brightness (so its clean accuracy is 100%)."""

    def __init__(self, target, classes=4):
        super().__init__()
        self.target, self.classes = target, classes

    def forward(self, x):
        label = (x[:, 0, 0, 0] * 10).round().long()
        logits = nn.functional.one_hot(label, self.classes).float()
        white = (x >= 0.999).flatten(1).any(1)
        logits[white] = nn.functional.one_hot(torch.tensor(self.target), self.classes).float()
        return logits


def _images(labels):
    return (labels.float() / 10).view(-1, 1, 1, 1).expand(-1, 3, 16, 16).contiguous()


def test_clean_accuracy_and_asr_definition():
    labels = torch.tensor([0, 1, 2, 3] * 10)
    images = _images(labels)
    model = WhitePatchDetector(target=2)
    assert clean_accuracy(model, images, labels) == 1.0
    assert attack_success_rate(model, images, labels, torch.ones(3, 3, 3), target=2) == 1.0
    assert attack_success_rate(model, images, labels, torch.zeros(3, 3, 3), target=2) == 0.0
    # a trigger that is white on one pixel only also fires; ASR counts only non-target images
    half = torch.zeros(3, 3, 3)
    half[:, 1, 1] = 1
    assert attack_success_rate(model, images, labels, half, target=2) == 1.0


def test_asr_ignores_images_of_the_target_class():
    class AlwaysTarget(nn.Module):
        def forward(self, x):
            return torch.tensor([[0.0, 1.0]]).expand(len(x), 2)

    labels = torch.tensor([1, 1, 1, 0])
    asr = attack_success_rate(AlwaysTarget(), _images(labels), labels, torch.zeros(3, 3, 3), target=1)
    assert asr == 1.0  # one non-target image, classified as the target


def test_models_take_pixel_space_input():
    for name in ("small", "resnet18"):
        model = build_model(name, 10, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2)).eval()
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
        assert torch.allclose(model.mean.flatten(), torch.tensor([0.5, 0.4, 0.3]))
