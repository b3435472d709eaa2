"""The trigger generator G_beta and the MINE statistics network T (as in the paper's reference code)."""
from dataclasses import dataclass

import torch
from torch import nn


class TriggerGenerator(nn.Module):
    """z (noise_dim) -> a 3 x k x k trigger in [0, 1].

    Four fully connected layers; z is split into four chunks, one fed to each layer as a skip
    input, so every layer can inject fresh randomness (this keeps the output diverse).
    """

    def __init__(self, k: int = 3, noise_dim: int = 64, hidden: int = 512, layers: int = 4):
        super().__init__()
        if noise_dim % layers:
            raise ValueError("noise_dim must split evenly over the layers")
        self.k, self.noise_dim, self.chunk = k, noise_dim, noise_dim // layers
        sizes = [0] + [hidden] * (layers - 1)
        self.hidden = nn.ModuleList(
            nn.Sequential(nn.Linear(s + self.chunk, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2))
            for s in sizes[:-1])
        self.out = nn.Linear(hidden + self.chunk, 3 * k * k)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        chunks = z.split(self.chunk, dim=1)
        h = self.hidden[0](chunks[0])
        for layer, c in zip(self.hidden[1:], chunks[1:-1]):
            h = layer(torch.cat([h, c], 1))
        return torch.sigmoid(self.out(torch.cat([h, chunks[-1]], 1))).view(-1, 3, self.k, self.k)


class StatisticsNetwork(nn.Module):
    """T(z, trigger) -> a scalar score, for the MINE lower bound on I(z; G(z))."""

    def __init__(self, k: int = 3, noise_dim: int = 64, hidden: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(noise_dim + 3 * k * k, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, x.flatten(1)], 1)).squeeze(1)


def sample_noise(n: int, noise_dim: int, device, generator=None, kind: str = "uniform") -> torch.Tensor:
    """z ~ U[0, 1]^d (the reference) or N(0, I)."""
    if kind == "gaussian":
        return torch.randn(n, noise_dim, device=device, generator=generator)
    return torch.rand(n, noise_dim, device=device, generator=generator)


@dataclass
class GeneratorSet:
    """MESA's search as a defense receives it: G_beta per beta, and the noise they were trained on."""
    by_beta: dict[float, TriggerGenerator]
    noise: str = "uniform"

    def __len__(self) -> int:
        return len(self.by_beta)


def generator_sampler(gen: TriggerGenerator, seed: int = 0, noise: str = "uniform"):
    """A Sampler (mesa/method/poison.py): fresh triggers from G (eval mode, no gradient) on every call."""
    device = next(gen.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    gen.eval()

    @torch.no_grad()
    def sample(n):
        return gen(sample_noise(n, gen.noise_dim, device, g, noise))

    return sample
