"""Errors a user can act on. The CLI prints their message on one line and exits 2."""
from __future__ import annotations

from collections.abc import Iterable


class GenlabError(Exception):
    """Base class: the message says what was wrong, what was expected and what to do."""

    every_rank: bool = False  # raised alike by every process of a torchrun job (genlab.world.every_rank)
    silent: bool = False      # such an error on a rank other than 0: rank 0 alone prints it


class DataError(GenlabError):
    """A dataset could not be found, read or verified."""


class ConfigError(GenlabError):
    """A model, training or data option is invalid or inconsistent."""


class RunError(GenlabError):
    """A run directory is missing, corrupt, or belongs to another model."""


class TrainingError(GenlabError):
    """Training failed, for example the loss became NaN or infinite."""


def did_you_mean(word: str, choices: Iterable[str], quote: bool = True) -> str:
    """"; did you mean 'train'?" when a choice is close to a mistyped word (difflib's ratio >= 0.6), else ""."""
    import difflib  # only on the way to an error

    close = difflib.get_close_matches(word, list(choices), n=1)
    if not close:
        return ""
    return f"; did you mean {close[0]!r}?" if quote else f"; did you mean {close[0]}?"
