"""Classifiers by name. Normalisation is part of the model, so images and triggers stay in [0, 1]."""
import torch
from torch import nn

from mesa.architectures import IMPORTED_ARCHITECTURES
from mesa.errors import MesaError


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Scale(nn.Module):
    """Multiply by a constant: keeps the logits small so a high learning rate stays stable (ResNet-9 trick)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x):
        return x + self.body(x)


def small_net(num_classes: int, widths=(16, 32, 64, 128)) -> nn.Sequential:
    """A ResNet-9-style net (DAWNBench/airbench family) narrowed for CPUs: ~0.12 s per batch of 128."""
    w0, w1, w2, w3 = widths
    return nn.Sequential(
        conv_bn(3, w0),
        conv_bn(w0, w1), nn.MaxPool2d(2), Residual(w1),
        conv_bn(w1, w2), nn.MaxPool2d(2),
        conv_bn(w2, w3), nn.MaxPool2d(2), Residual(w3),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(w3, num_classes, bias=False), Scale(0.125),
    )


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet18(num_classes: int) -> nn.Sequential:
    """The paper's CIFAR ResNet-18: 3x3 stem, BasicBlock [2, 2, 2, 2], widths 64..512."""
    layers, c_in = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)], 64
    for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))


def fastnet(num_classes: int) -> nn.Module:
    """The strong CIFAR model (mesa/fast_net.py): ~2M parameters, 93%+ in a few epochs of its recipe."""
    from mesa.fast_net import FastNet

    return FastNet(num_classes)


ARCHITECTURES = {"small": small_net, "resnet18": resnet18, "fastnet": fastnet, **IMPORTED_ARCHITECTURES}
TRAINED_HERE = ("small", "fastnet", "resnet18")  # what `attack --model` builds from scratch


class Classifier(nn.Module):
    """Normalise pixel-space input, then run the body in channels_last (faster on CPU and GPU)."""

    def __init__(self, body: nn.Module, mean, std):
        super().__init__()
        self.body = body.to(memory_format=torch.channels_last)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def normalize(self, x):
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    def forward(self, x):
        return self.body(self.normalize(x))

    def init_from_data(self, images: torch.Tensor) -> None:
        """Data-dependent initialisation (fastnet's whitening layer) from uint8 training images; a no-op
        for bodies without one."""
        if hasattr(self.body, "init_from_data"):
            self.body.init_from_data(self.normalize(images[:5000].float() / 255))


def build_model(name: str, num_classes: int, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)) -> Classifier:
    if name not in ARCHITECTURES:
        raise MesaError(f"unknown model {name!r}: use {', '.join(ARCHITECTURES)}")
    return Classifier(ARCHITECTURES[name](num_classes), mean, std)
