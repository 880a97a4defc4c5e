"""Every path and file name of a run directory, here and nowhere else (no torch: help texts use them too).

RUN/config.json        one typed, versioned record (genlab.runs.record): the model and its config, the data as
                       the model saw it, the training config, versions, the command
RUN/model.safetensors  the weights of the last complete epoch
RUN/best.safetensors   the weights of the epoch of the best validation loss (runs with a validation split)
RUN/ema.safetensors    the model's weights with the moving average of the trained ones (the generator's for GANs)
                       at the last complete epoch (runs trained with --ema)
RUN/state.pt           what --resume needs: optimizers, random-number streams, counters, the weights again
RUN/metrics.jsonl      one JSON line of losses per completed epoch
RUN/evaluation.json    what `genlab evaluate` measured
RUN/report.html        the self-contained report page
RUN/images/            per-epoch grids (samples_epoch001.png, recon_epoch001.png, ...), the pictures of
                       `genlab sample` and `genlab reconstruct`, and in images/explore/ those of `genlab explore`
RUN/tensorboard/       TensorBoard event files (`genlab train --tensorboard`)
RUN/.staging-NNNNNN/   an epoch being written; RUN/.commit/ one published by a rename (genlab.runs.store)
RUN/.lock              the writer lock: one process writes a run at a time, and this file names it (genlab.runs.guard)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
BEST_WEIGHTS = "best.safetensors"
EMA_WEIGHTS = "ema.safetensors"
STATE = "state.pt"
METRICS = "metrics.jsonl"
EVALUATION = "evaluation.json"
REPORT = "report.html"
IMAGES = "images"
EXPLORE = "explore"  # a folder of IMAGES
TENSORBOARD = "tensorboard"
COMMIT = ".commit"
STAGING_PREFIX = ".staging-"
LOCK = ".lock"

# every name directly in a run that genlab writes: none of them may be a symbolic link (genlab.runs.guard)
OWN_NAMES = (CONFIG, WEIGHTS, BEST_WEIGHTS, EMA_WEIGHTS, STATE, METRICS, EVALUATION, REPORT, IMAGES, TENSORBOARD,
             COMMIT, LOCK)

# the files one epoch commits together (the record when a resumed run's changed, the best weights when the epoch
# set a new best, the averaged weights of a run trained with --ema)
EPOCH_FILES = (WEIGHTS, STATE, METRICS, CONFIG, BEST_WEIGHTS, EMA_WEIGHTS)
EPOCH_IMAGE_KINDS = ("samples", "recon")  # the trainer's per-epoch grids
EPOCH_SAMPLES_PER_ROW = 8  # images per row of an epoch's sample grid
_EPOCH_IMAGE = re.compile(r"(?P<kind>recon|samples)_epoch(?P<epoch>\d+)\.png")


def epoch_image_name(kind: str, epoch: int) -> str:
    """'samples_epoch007.png': an epoch's grid, a file of RUN/images/."""
    return f"{kind}_epoch{epoch:03d}.png"


def parse_epoch_image(name: str) -> tuple[str, int] | None:
    """(kind, epoch) of an epoch grid's name relative to RUN/images/; None for any other picture."""
    match = _EPOCH_IMAGE.fullmatch(name)
    return (match["kind"], int(match["epoch"])) if match else None


def in_run(*parts: str) -> str:
    """A place in a run as help texts and messages write it: in_run(IMAGES, EXPLORE) is 'RUN/images/explore'."""
    return "/".join(("RUN", *parts))


def place(*parts: str) -> property:
    """A RunLayout property: the path of `parts` inside the run."""
    return property(lambda layout: layout.root.joinpath(*parts))


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    config = place(CONFIG)
    weights = place(WEIGHTS)
    best_weights = place(BEST_WEIGHTS)
    ema_weights = place(EMA_WEIGHTS)
    state = place(STATE)
    metrics = place(METRICS)
    evaluation = place(EVALUATION)
    report = place(REPORT)
    images = place(IMAGES)
    explore = place(IMAGES, EXPLORE)
    tensorboard = place(TENSORBOARD)
    commit = place(COMMIT)
    lock = place(LOCK)

    def staging(self, epoch: int) -> Path:
        """The folder an epoch is written into before its commit."""
        return self.root / f"{STAGING_PREFIX}{epoch:06d}"

    def staged(self) -> list[Path]:
        """Epochs left half-written by a kill."""
        return sorted(self.root.glob(STAGING_PREFIX + "*"))

    def epoch_image(self, kind: str, epoch: int) -> Path:
        return self.images / epoch_image_name(kind, epoch)

    def weights_file(self, best: bool) -> Path:
        return self.best_weights if best else self.weights
