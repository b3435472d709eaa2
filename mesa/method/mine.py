"""MINE (Belghazi et al. 2018): a neural lower bound on mutual information, and its trainer.

    I(Z; X) >= E_joint[T(z, x)] - log E_marginal[exp T(z', x)]

The plain bound's gradient is biased by the log of a mini-batch mean; MINE corrects it by
dividing the exp-term by a moving average of its mean instead.
"""
import math

import torch


def mine_lower_bound(statistics, z: torch.Tensor, z_marginal: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The Donsker-Varadhan bound on I(z; x), with z_marginal drawn independently of x."""
    joint = statistics(z, x).mean()
    marginal = statistics(z_marginal, x)
    return joint - (torch.logsumexp(marginal, 0) - math.log(len(marginal)))


class MineTrainer:
    """Trains T to maximise the bound, with the moving-average gradient correction."""

    def __init__(self, statistics, optimizer, rate: float = 0.001):
        self.statistics, self.optimizer, self.rate = statistics, optimizer, rate
        self.moving_average = None  # of E_marginal[exp T], a device tensor (no host sync)

    def step(self, z: torch.Tensor, z_marginal: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One update of T; returns the (detached) bound before the update."""
        joint = self.statistics(z, x).mean()
        marginal = self.statistics(z_marginal, x)
        mean_exp = marginal.exp().mean()
        if self.moving_average is None:
            self.moving_average = mean_exp.detach()
        else:
            self.moving_average = (1 - self.rate) * self.moving_average + self.rate * mean_exp.detach()
        loss = -(joint - mean_exp / self.moving_average)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return (joint - (torch.logsumexp(marginal, 0) - math.log(len(marginal)))).detach()
