"""Errors a user can act on. The CLI prints their message on one line and exits 2."""


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
