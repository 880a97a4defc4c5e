"""The feature classifier of the Fréchet distance: trained once per dataset with genlab's own trainer and kept in
a cache folder ($GENLAB_CACHE, else ~/.cache/genlab), one process at a time."""
from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from genlab.data.dataset import Dataset
from genlab.models.registry import create_model, data_fields
from genlab.options import TrainConfig
from genlab.runs.layout import RunLayout
from genlab.runs.record import RunRecord, read_metrics
from genlab.training.trainer import train
from genlab.world import World, from_rank_zero, launched_world_size

CLASSIFIER_EPOCHS = 5
CLASSIFIER_SEED = 0

Log = Callable[[str], None]


def cache_root() -> Path:
    """$GENLAB_CACHE, else ~/.cache/genlab."""
    return Path(os.environ.get("GENLAB_CACHE") or Path.home() / ".cache" / "genlab").expanduser()


def classifier_dir(record: RunRecord) -> Path:
    """The cached classifier's run directory for the run's dataset, size and channels."""
    data = record.data
    parts = [data.spec]
    parts += [f"{data.image_size}px"] if data.image_size else []
    parts += ["rgb"] if data.channels == 3 else []
    return cache_root() / re.sub(r"[^A-Za-z0-9_.-]+", "-", "classifier-" + "-".join(map(str, parts)))


def classifier_finished(folder: Path) -> bool:
    return RunLayout(folder).weights.is_file() and len(read_metrics(folder)) >= CLASSIFIER_EPOCHS


def train_classifier(folder: Path, record: RunRecord, data: Dataset, log: Log, progress: bool) -> None:
    """Train the small CNN for CLASSIFIER_EPOCHS into `folder` (resuming a killed attempt), saying first what it
    is for and, after the first epoch, how long the rest will take."""
    log(f"the Fréchet distance compares features of a classifier of {data.name}; none is cached yet, so one is "
        f"trained now, once: {CLASSIFIER_EPOCHS} epochs over {len(data.train_x)} images (minutes on a CPU, seconds "
        f"on a GPU), kept in {folder}. --skip-fid skips the distances; --classifier RUN uses a classifier of yours")
    torch.manual_seed(CLASSIFIER_SEED)
    model = create_model("classifier", **data_fields("classifier", data.image_shape, len(data.classes)))
    processes = launched_world_size()  # under torchrun the batch of 128 must split evenly over the ranks
    train_config = TrainConfig(epochs=CLASSIFIER_EPOCHS, seed=CLASSIFIER_SEED,  # device "auto": CUDA if present
                               batch_size=-(-128 // processes) * processes)

    def estimate(row: dict[str, Any]) -> None:
        left = CLASSIFIER_EPOCHS - row["epoch"]
        if row["epoch"] == 1 and left:
            log(f"feature classifier: about {left * row['epoch_seconds']:.0f} s more for the other {left} epochs")
    train(model, data, train_config, folder, resume=True, data_spec=record.data, log=log, progress=progress,
          command=f"genlab evaluate (feature classifier for {data.name})", on_epoch_end=estimate)


@contextmanager
def classifier_lock(folder: Path, log: Log) -> Iterator[None]:
    """Hold FOLDER.lock (an flock) so that one process at a time trains or checks the cached classifier; a
    second process waits, saying why, and then finds the classifier finished."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another process is training the feature classifier in {folder}; waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_classifier(record: RunRecord, data: Dataset, log: Log, progress: bool = False,
                      world: World = World()) -> Path:
    """The folder of the cached classifier for the run's data, trained there first if missing (under torchrun by
    every rank, into rank 0's cache)."""
    folder = classifier_dir(record)
    if from_rank_zero(world, lambda: not classifier_finished(folder)):
        # the lock keeps two jobs from writing one cache; under torchrun rank 0 (the writer) holds it for its job,
        # and every rank trains, so the ranks follow rank 0's decision instead of each re-checking the folder
        with classifier_lock(folder, log) if world.writes else nullcontext():
            if world.active or not classifier_finished(folder):  # another job may have finished it meanwhile
                train_classifier(folder, record, data, log, progress)
    return folder
