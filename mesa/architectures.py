"""Architectures of models trained elsewhere, with their authors' parameter names, so that their
state dicts load as they are: torchvision's ResNet-18/34 and VGG-16-BN, and the pre-activation
ResNet-18 that BackdoorBench (and WaNet before it) uses for CIFAR."""
import torch.nn.functional as F
from torch import nn


class PreActBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU before each conv; the shortcut takes the activated input."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + shortcut


class PreActResNet18(nn.Module):
    """3x3 stem without BN, PreActBlock [2, 2, 2, 2], widths 64..512, adaptive average pool."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        planes_in, stages = 64, []
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(PreActBlock(planes_in, planes, stride), PreActBlock(planes, planes, 1)))
            planes_in = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        return self.linear(self.avgpool(out).flatten(1))


def _torchvision(name: str):
    def build(num_classes: int) -> nn.Module:
        from torchvision import models

        return getattr(models, name)(weights=None, num_classes=num_classes)

    build.__doc__ = f"torchvision's {name} (no pretrained weights: the state dict brings them)"
    return build


IMPORTED_ARCHITECTURES = {
    "preactresnet18": PreActResNet18,
    "torchvision-resnet18": _torchvision("resnet18"),
    "torchvision-resnet34": _torchvision("resnet34"),
    "torchvision-vgg16_bn": _torchvision("vgg16_bn"),
}

# BackdoorBench's `model_name` -> ours (its resnet18/34 are torchvision's, not the CIFAR ResNet)
BACKDOORBENCH_MODELS = {
    "preactresnet18": "preactresnet18",
    "resnet18": "torchvision-resnet18",
    "resnet34": "torchvision-resnet34",
    "vgg16_bn": "torchvision-vgg16_bn",
}
