"""Training with the run's report kept current: what `genlab.train` and `genlab train` call."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlab.data.catalog import load_dataset
from genlab.data.dataset import Dataset
from genlab.models.registry import create_model, data_fields
from genlab.report import write_report
from genlab.train.config import TrainConfig
from genlab.train.distributed import is_rank_zero
from genlab.train.plan import RunPlan
from genlab.errors import ConfigError
from genlab.train.record import DataRecord, data_record, read_record
from genlab.train.tensorboard_log import TensorBoardLog
from genlab.train.trainer import train as train_loop


def train(model: nn.Module, data: Dataset, config: TrainConfig = TrainConfig(), out: str | Path | None = None,
          resume: bool = False, data_spec: DataRecord | None = None, command: str = "",
          on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
          log: Callable[[str], None] | None = None, progress: bool | None = None,
          tensorboard: bool = False) -> list[dict[str, Any]]:
    """Train `model` on `data`; with `out`, a resumable run directory whose report.html follows every epoch (and,
    with `tensorboard`, TensorBoard event files in OUT/tensorboard/).

    Returns one metrics record per epoch (losses in the model's units, nats per image for VAEs).
    """
    if tensorboard and out is None:
        raise ConfigError("tensorboard=True logs into the run directory: give out= as well")
    writes = out is not None and is_rank_zero()  # under torchrun rank 0 alone writes
    board = TensorBoardLog(out) if tensorboard and writes else None

    def after_epoch(record: dict[str, Any]) -> None:
        if writes:
            write_report(out)
        if board is not None:
            board.log_epoch(record)
        if on_epoch_end is not None:
            on_epoch_end(record)
    try:
        metrics = train_loop(model, data, config, out, resume=resume, data_spec=data_spec, command=command,
                             on_epoch_end=after_epoch, log=log, progress=progress)
    except BaseException:
        if board is not None:
            board.close()  # what was logged stays; the hyperparameter table waits for a run that ends
        raise
    if board is not None:
        board.close(read_record(out), metrics[-1] if metrics else None)
    if writes and metrics:
        write_report(out)  # also when --resume found the run finished
    return metrics


def train_planned(plan: RunPlan, out: Path, resume: bool = False, command: str = "",
                  log: Callable[[str], None] | None = None, progress: bool | None = None,
                  tensorboard: bool = False) -> list[dict[str, Any]]:
    """`genlab train`: load the planned data, build the model from the seed, train into `out` with its report."""
    log = log or ((lambda line: print(line, flush=True)) if is_rank_zero() else (lambda line: None))
    spec, data_dir = plan.data["spec"], plan.data["data_dir"]
    data = load_dataset(spec, data_dir=data_dir, image_size=plan.data["image_size"], channels=plan.data["channels"])
    torch.manual_seed(plan.train.seed)  # model initialisation depends on the seed too
    model = create_model(plan.model, **data_fields(plan.model, data.image_shape, len(data.classes)),
                         **plan.model_options)
    record = data_record(data, spec, data_dir, plan.data["image_size"], plan.data["channels"])
    held_out = plan.train.val_images
    split = (f"{data.train_x.shape[0] - held_out} train / {held_out} validation" if held_out
             else f"{data.train_x.shape[0]} train")
    log(f"training {plan.model} on {data.name} {tuple(data.image_shape)}: "
        f"{split} / {data.test_x.shape[0]} test images -> {out}")
    return train(model, data, plan.train, out, resume=resume, data_spec=record, command=command, log=log,
                 progress=progress, tensorboard=tensorboard)
