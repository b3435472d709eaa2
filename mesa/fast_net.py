"""`fastnet`: a ~2M-parameter CIFAR network from the fast-training line of work (DAWNBench's ResNet-9,
hlb-cifar10, airbench), rewritten here from its ideas, not its code.

What makes it reach 93%+ in a few epochs:
- a frozen 2x2 *whitening* first layer, its filters the eigenvectors of the training images' 2x2
  patch covariance (scaled by 1/sqrt(eigenvalue)) and their negatives, so the net starts from
  decorrelated inputs (`init_from_data`);
- three conv-pool-BatchNorm-GELU groups (64, 256, 256), identity (dirac) init of the convolutions;
- BatchNorm without a learned scale, whose biases learn 64x faster (`RECIPE["bias_lr_scale"]`);
- logits scaled by 1/9, label smoothing 0.2, Nesterov SGD with a short warm-up then a linear decay.
Left out, to stay one plain model: lookahead/EMA weights, test-time augmentation, progressive freezing.
"""
import torch
from torch import nn

from mesa.models import Scale

WIDTHS = (64, 256, 256)
WHITEN_SIZE = 2

# TrainConfig fields for training from scratch (`mesa.train.TrainConfig`), in the usual mean-loss form:
# lr 1.27e-3 per image of the batch (10 per 1024 at momentum 0.85, as the decoupled airbench setting).
RECIPE = {"batch_size": 1000, "lr": 1.27, "momentum": 0.85, "weight_decay": 1.5e-3, "label_smoothing": 0.2,
          "schedule": "triangle", "bias_lr_scale": 64.0, "crop_pad": 2}


class ScaleFreeNorm(nn.BatchNorm2d):
    """BatchNorm with its scale fixed at 1: only the bias learns (scale-invariant convolutions before it)."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=1e-12, momentum=0.1)
        self.weight.requires_grad_(False)


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    nn.init.dirac_(conv.weight.data[:min(c_in, c_out)])  # start each group close to an identity map
    return conv


def conv_group(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(_conv(c_in, c_out), nn.MaxPool2d(2), ScaleFreeNorm(c_out), nn.GELU(),
                         _conv(c_out, c_out), ScaleFreeNorm(c_out), nn.GELU())


class FastNet(nn.Sequential):
    def __init__(self, num_classes: int, widths=WIDTHS):
        whiten = nn.Conv2d(3, 2 * 3 * WHITEN_SIZE ** 2, WHITEN_SIZE, padding=0, bias=True)
        whiten.weight.requires_grad_(False)
        nn.init.zeros_(whiten.bias)
        w1, w2, w3 = widths
        super().__init__(whiten, nn.GELU(), conv_group(whiten.out_channels, w1), conv_group(w1, w2),
                         conv_group(w2, w3), nn.MaxPool2d(3), nn.Flatten(), nn.Linear(w3, num_classes, bias=False),
                         Scale(1 / 9))

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Set the whitening filters from normalised training images `x` (N x 3 x H x W, a few thousand)."""
        k = WHITEN_SIZE
        patches = x.float().unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * k * k)
        patches = patches - patches.mean(0)
        cov = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov.double())
        filters = (eigenvectors.T / (eigenvalues.clamp(min=0) + 1e-2).sqrt()[:, None]).float().view(-1, 3, k, k)
        self[0].weight.copy_(torch.cat([filters, -filters]).to(self[0].weight))


def fast_net(num_classes: int) -> FastNet:
    return FastNet(num_classes)
