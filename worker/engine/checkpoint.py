"""Resumable optimisation state: the image, Adam's variables and where the loop stood, as npz bytes."""

import io
import zipfile
from dataclasses import dataclass, replace

import numpy as np

# 3: names the optimiser; slots are Adam's (m, v, t) or L-BFGS's (loss, gradient, S, Y, pairs, evaluations).
# 2 (Adam's slots, no name) is still read; 1 held Keras's variables and is refused.
FORMAT = 3
READABLE = (2, 3)
OPTIMIZERS = ("adam", "lbfgs")


@dataclass(frozen=True)
class TrainerState:
    """Everything needed to continue a job's optimisation exactly where it stopped.

    ``level`` is the coarse-to-fine level (0 first), ``step`` the updates done in that level, ``image`` the
    (h, w, 3) float32 image after them, ``slots`` the optimiser's state after the image, in order: Adam's
    (m, v, steps done), or L-BFGS's (loss, gradient, moves, gradient changes, pairs, evaluations).
    """

    level: int
    step: int
    image: np.ndarray
    slots: tuple[np.ndarray, ...]
    optimizer: str = "adam"

    def at_level(self, level: int) -> "TrainerState":
        """The same state, labelled with its level (the optimiser loop knows only its own steps)."""
        return replace(self, level=level)

    def to_npz(self) -> bytes:
        """Serialise (uncompressed: the image is noise-like and slots are floats; speed matters more)."""
        buffer = io.BytesIO()
        slots = {f"slot{index}": slot for index, slot in enumerate(self.slots)}
        np.savez(
            buffer,
            format=FORMAT,
            optimizer=self.optimizer,
            level=self.level,
            step=self.step,
            image=self.image,
            **slots,
        )
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> "TrainerState":
        """Rebuild what `to_npz` wrote; ValueError if the bytes are not such a checkpoint."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                if int(archive["format"]) not in READABLE:
                    raise ValueError(f"format {int(archive['format'])}, this worker reads {READABLE}")
                optimizer = str(archive["optimizer"]) if "optimizer" in archive.files else "adam"
                if optimizer not in OPTIMIZERS:
                    raise ValueError(f"unknown optimizer {optimizer!r}")
                count = sum(1 for name in archive.files if name.startswith("slot"))
                slots = tuple(archive[f"slot{index}"] for index in range(count))
                return cls(int(archive["level"]), int(archive["step"]), archive["image"], slots, optimizer)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
            raise ValueError(f"not a styleforge checkpoint: {err}") from err


class Paused(Exception):
    """The caller asked the loop to pause (shutdown, time limit); carries the state to resume from."""

    def __init__(self, state: TrainerState) -> None:
        super().__init__(f"paused at level {state.level} step {state.step}")
        self.state = state
