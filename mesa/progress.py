"""Progress events shared by every long stage; the CLI's bar and the app's charts consume them."""
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Progress:
    stage: str  # e.g. "train", "search beta=0.9", "defend ensemble"
    step: int  # steps done in this stage
    total: int  # steps in this stage
    epoch: int = 0
    values: dict = field(default_factory=dict)  # loss, accuracy, asr, mi, ... whatever the stage logs
    images: object = None  # optional tensor snapshot (e.g. current trigger samples)


ProgressFn = Callable[[Progress], None]


def ignore(_: Progress) -> None:
    """The default callback."""
