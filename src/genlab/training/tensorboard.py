"""TensorBoard logging of a run: loss parts per epoch and every few steps, the learning rate, each epoch's images,
the config as hyperparameters, and at the end the test images' latent codes in the embedding projector.

The per-step parts stay on the device: each step adds its parts to a running sum there, each interval's mean is
kept as a tensor, and they are read back together when the epoch ends (one transfer, beside the trainer's own).

The event files go to the run's TensorBoard folder (genlab.runs.layout; `tensorboard --logdir` it). They are a log
that grows while training runs, not part of the checkpoint an epoch commits: a run killed mid-write may leave a
last event cut short, which TensorBoard's reader skips. A resumed run adds a new event file beside the old ones.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genlab.data.batches import to_unit_float
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, GenlabError
from genlab.images import open_image, pil_to_tensor
from genlab.models.contract import AutoEncoder
from genlab.options import TENSORBOARD_EVERY
from genlab.runs.layout import EPOCH_IMAGE_KINDS, RunLayout
from genlab.runs.record import RunRecord

STEP_INTERVAL = TENSORBOARD_EVERY  # optimizer steps per point of the train_step/ scalars (genlab.options)
N_PROJECTED = 1000   # test images whose latent codes go to the embedding projector
PROJECTOR_TAG = "latent_means"


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


@torch.no_grad()
def latent_means(model: nn.Module, x: Tensor, batch_size: int = 500) -> Tensor | None:
    """The codes of uint8 images x (N, C, H, W), flattened to (N, D) on the CPU: a VAE's posterior means, an
    autoencoder's encode(x); None for a model without an encoder (a GAN, a classifier)."""
    if callable(getattr(model, "posterior", None)):
        def encode(batch: Tensor) -> Any:
            return model.posterior(batch)[0]
    elif isinstance(model, AutoEncoder):
        encode = model.encode
    else:
        return None
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        codes = [encode(to_unit_float(x[start:start + batch_size].to(device)))
                 for start in range(0, x.shape[0], batch_size)]
    finally:
        model.train(was_training)
    if not all(isinstance(code, Tensor) for code in codes):
        return None
    return torch.cat([code.flatten(1).float().cpu() for code in codes])


class TensorBoardLog:
    """Writes one run's epochs to its TensorBoard folder as they complete, the loss parts every `every` steps
    (train_step/PART, and train_step/lr under a schedule); `close` adds the hyperparameter table."""

    def __init__(self, run_dir: str | Path, every: int = STEP_INTERVAL) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"the TensorBoard step interval must be a whole number >= 1, got {every!r}")
        self.run_dir, self.every = Path(run_dir), every
        self.writer_class = summary_writer_class()  # fails before training when tensorboard is not installed
        self.writer: Any = None  # opened at the first epoch: the run directory must not exist before training
        self.sums: Tensor | None = None  # the current interval's parts times batch size, on the device
        self.seen, self.last_step, self.names = 0, 0, []  # images in the interval, its last step, the part names
        self.lr: float | None = None  # the interval's last rate under a schedule
        self.pending: list[tuple[int, list[str], Tensor, float | None]] = []  # (step, names, means, lr)

    def log_step(self, step: int, parts: dict[str, Tensor], batch_size: int, lr: float | None) -> None:
        """The trainer's on_step: adds the step's parts on the device; every `every` steps keeps their mean."""
        stacked = torch.stack([part.detach().float() for part in parts.values()])
        self.sums = stacked * batch_size if self.sums is None else self.sums.add_(stacked, alpha=batch_size)
        self.seen, self.last_step, self.lr, self.names = self.seen + batch_size, step, lr, list(parts)
        if step % self.every == 0:
            self.end_interval()

    def end_interval(self) -> None:
        if self.sums is not None:
            self.pending.append((self.last_step, self.names, self.sums / self.seen, self.lr))
        self.sums, self.seen = None, 0

    def write_steps(self) -> None:
        """The kept interval means, read back in one transfer and written at their steps."""
        if not self.pending:
            return
        self.open()
        values = torch.stack([means for _, _, means, _ in self.pending]).tolist()
        for (step, names, _, lr), row in zip(self.pending, values):
            for name, value in zip(names, row):
                self.writer.add_scalar(f"train_step/{name}", value, step)
            if lr is not None:
                self.writer.add_scalar("train_step/lr", lr, step)
        self.pending = []

    def log_projector(self, model: nn.Module, data: Dataset, step: int) -> bool:
        """Up to N_PROJECTED test images' latent codes with their class names and the images as sprites, at
        `step`; False (and nothing written) for a model without an encoder."""
        x, y = data.test_x[:N_PROJECTED], data.test_y[:N_PROJECTED]
        codes = latent_means(model, x)
        if codes is None:
            return False
        labels = [data.classes[label] for label in y.tolist()]
        self.open().add_embedding(codes, metadata=labels, label_img=to_unit_float(x), global_step=step,
                                  tag=PROJECTOR_TAG)
        self.writer.flush()
        return True

    def open(self) -> Any:
        if self.writer is None:
            self.writer = self.writer_class(log_dir=str(RunLayout(self.run_dir).tensorboard))
        return self.writer

    def log_epoch(self, row: dict[str, Any]) -> None:
        """Scalars PART/SPLIT (loss/train, kl/test, ...) and the epoch's image grids, at step = epoch."""
        self.open()
        self.write_steps()
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
        Then the files are closed; an interval cut short by the end of training is written at its last step."""
        self.end_interval()
        self.write_steps()
        if record is not None and last is not None:
            metrics = {f"hparam/{part}/test": value for part, value in last.get("test", {}).items()}
            self.open().add_hparams(hyperparameters(record), metrics, run_name=".")
        if self.writer is not None:
            self.writer.close()
