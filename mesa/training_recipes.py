"""What each model trains with from scratch (TrainConfig fields); fine-tuning keeps the paper's
SGD lr 1e-3 whatever the model. Models absent here use TrainConfig's defaults (one-cycle SGD, peak 0.2)."""
from mesa.fast_net import RECIPE as FASTNET_RECIPE

FROM_SCRATCH = {"fastnet": FASTNET_RECIPE}


def recipe(model: str) -> dict:
    return dict(FROM_SCRATCH.get(model, {}))
