"""The trainer's user errors (a problem with the data, the configuration or a resume),
each naming the file or key at fault."""
from __future__ import annotations


class TrainError(RuntimeError):
    """A user's problem found by the trainer (data, configuration or resume mismatch); the
    message names the file or key at fault."""


class NonFiniteLossError(TrainError):
    """A loss became NaN or inf; the message names the loss and the step."""
