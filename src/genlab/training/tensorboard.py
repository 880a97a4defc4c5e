"""TensorBoard logging of a run: loss parts per epoch, each epoch's images, the config as hyperparameters.

The event files go to the run's TensorBoard folder (genlab.runs.layout; `tensorboard --logdir` it). They are a log
that grows while training runs, not part of the checkpoint an epoch commits: a run killed mid-write may leave a
last event cut short, which TensorBoard's reader skips. A resumed run adds a new event file beside the old ones.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genlab.errors import ConfigError, GenlabError
from genlab.images import open_image, pil_to_tensor
from genlab.runs.layout import EPOCH_IMAGE_KINDS, RunLayout
from genlab.runs.record import RunRecord


def summary_writer_class() -> type:
    """torch's SummaryWriter; a ConfigError naming the extra to install when tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install 'genlab[tensorboard]' "
                          "(or pip install tensorboard)") from None
    return SummaryWriter


def hyperparameters(record: RunRecord) -> dict[str, Any]:
    """The run's settings flattened to the scalars TensorBoard's hyperparameter table takes ('train.lr': 0.001)."""
    flat: dict[str, Any] = {"model": record.model}
    for section, values in (("model_config", record.model_config.to_dict()), ("train", record.train.to_dict()),
                            ("data", {"spec": record.data.spec, "name": record.data.name})):
        for name, value in values.items():
            keep = isinstance(value, (int, float, str, bool))
            flat[f"{section}.{name}"] = value if keep else json.dumps(value)
    return flat


class TensorBoardLog:
    """Writes one run's epochs to its TensorBoard folder as they complete; `close` adds the hyperparameter table."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.writer_class = summary_writer_class()  # fails before training when tensorboard is not installed
        self.writer: Any = None  # opened at the first epoch: the run directory must not exist before training

    def open(self) -> Any:
        if self.writer is None:
            self.writer = self.writer_class(log_dir=str(RunLayout(self.run_dir).tensorboard))
        return self.writer

    def log_epoch(self, row: dict[str, Any]) -> None:
        """Scalars PART/SPLIT (loss/train, kl/test, ...) and the epoch's image grids, at step = epoch."""
        self.open()
        epoch = row["epoch"]
        for split in ("train", "test"):
            for part, value in row.get(split, {}).items():
                self.writer.add_scalar(f"{part}/{split}", value, epoch)
        self.writer.add_scalar("time/epoch_seconds", row["epoch_seconds"], epoch)
        for kind in EPOCH_IMAGE_KINDS:
            path = RunLayout(self.run_dir).epoch_image(kind, epoch)
            if path.is_file():
                try:
                    image = open_image(path, path.name)
                except GenlabError:  # a damaged picture is the report's to flag; the log goes on without it
                    continue
                self.writer.add_image(kind, pil_to_tensor(image, 3 if image.mode != "L" else 1), epoch)
        self.writer.flush()

    def close(self, record: RunRecord | None = None, last: dict[str, Any] | None = None) -> None:
        """With the record and the last epoch's metrics: the config as hyperparameters beside its test losses.
        Then the files are closed."""
        if record is not None and last is not None:
            metrics = {f"hparam/{part}/test": value for part, value in last.get("test", {}).items()}
            self.open().add_hparams(hyperparameters(record), metrics, run_name=".")
        if self.writer is not None:
            self.writer.close()
