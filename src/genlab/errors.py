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


_stop: list[BaseException] = []  # why this process was told to stop (a signal), once it was


def stop_with(reason: BaseException) -> BaseException:
    """Record why this process is stopping (a signal handler raises what this returns). The exception may
    surface changed: a library that catches everything and raises its own type (a C extension's argument
    converter, say) hides it, so the CLI reports the recorded reason for whatever error then ends the command."""
    _stop[:] = [reason]
    return reason


def stopping() -> BaseException | None:
    """The reason recorded by stop_with, or None while nothing asked this process to stop."""
    return _stop[0] if _stop else None


def clear_stop() -> None:
    """Forget a recorded reason: a new command begins (several may run in one process)."""
    _stop.clear()


def did_you_mean(word: str, choices: Iterable[str], quote: bool = True) -> str:
    """"; did you mean 'train'?" when a choice is close to a mistyped word (difflib's ratio >= 0.6), else ""."""
    import difflib  # only on the way to an error

    close = difflib.get_close_matches(word, list(choices), n=1)
    if not close:
        return ""
    return f"; did you mean {close[0]!r}?" if quote else f"; did you mean {close[0]}?"
