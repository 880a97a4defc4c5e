"""The commands' work, done once for the command line and Python alike: training with the run's report kept
current (`genlab.train`, `genlab train`), and evaluating a run (`genlab evaluate`), each on one process or on
every process of a torchrun job."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlab.data.catalog import load_dataset
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.evaluation import (
    evaluate_run,
    load_everywhere,
    log_to_stderr,
    needs_cached_classifier,
    write_evaluation,
)
from genlab.models.registry import create_model, data_fields
from genlab.nn import has_convolutions
from genlab.options import EvaluationOptions, TrainConfig
from genlab.report.page import write_page
from genlab.runs.guard import one_writer
from genlab.runs.layout import RunLayout
from genlab.runs.record import DataRecord, data_record, read_record
from genlab.runs.store import load_run
from genlab.threads import compile_warning, compute_line, precision_warning, use_threads
from genlab.training.feature_classifier import cached_classifier
from genlab.training.plan import RunPlan, plan_command
from genlab.training.tensorboard import STEP_INTERVAL, TensorBoardLog
from genlab.training.trainer import check_trainable
from genlab.training.trainer import train as train_loop
from genlab.world import (
    World,
    from_rank_zero,
    is_rank_zero,
    join,
    launched_world_size,
    resolve_device,
)


def train(model: nn.Module, data: Dataset, config: TrainConfig = TrainConfig(), out: str | Path | None = None,
          resume: bool = False, data_spec: DataRecord | None = None, command: str = "",
          on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
          log: Callable[[str], None] | None = None, progress: bool | None = None,
          tensorboard: bool = False, tensorboard_every: int = STEP_INTERVAL) -> list[dict[str, Any]]:
    """Train `model` on `data`; with `out`, a resumable run directory whose report page follows every epoch (and,
    with `tensorboard`, TensorBoard event files in the run directory: the loss parts every `tensorboard_every`
    steps, and at the end the test images' latent codes in the embedding projector).

    Returns one metrics record per epoch (losses in the model's units, nats per image for VAEs). One process
    writes a run at a time: another that holds `out` is named in a one-line RunError.
    """
    if tensorboard and out is None:
        raise ConfigError("tensorboard=True logs into the run directory: give out= as well")
    if out is None:
        return train_logged(model, data, config, out, resume, data_spec, command, on_epoch_end, log, progress,
                            tensorboard, tensorboard_every)
    check_trainable(model, data, config, Path(out))  # no folder is made before the model, data and config pass
    with one_writer(out, join(resolve_device(config.device)), create=True):  # held until the last report
        return train_logged(model, data, config, out, resume, data_spec, command, on_epoch_end, log, progress,
                            tensorboard, tensorboard_every)


def train_logged(model: nn.Module, data: Dataset, config: TrainConfig, out: str | Path | None, resume: bool,
                 data_spec: DataRecord | None, command: str, on_epoch_end: Callable[[dict[str, Any]], None] | None,
                 log: Callable[[str], None] | None, progress: bool | None,
                 tensorboard: bool, tensorboard_every: int = STEP_INTERVAL) -> list[dict[str, Any]]:
    """train() with the run's writer lock held: the loop, the report after every epoch, TensorBoard."""
    writes = out is not None and is_rank_zero()  # under torchrun rank 0 alone writes
    board = TensorBoardLog(out, tensorboard_every) if tensorboard and writes else None
    if board is not None:
        logs = RunLayout(out).tensorboard
        (log or print)(f"tensorboard: event files go to {logs}; open them with `tensorboard --logdir {logs}`")

    def after_epoch(record: dict[str, Any]) -> None:
        if writes:
            write_page(out)
        if board is not None:
            board.log_epoch(record)
        if on_epoch_end is not None:
            on_epoch_end(record)
    try:
        metrics = train_loop(model, data, config, out, resume=resume, data_spec=data_spec, command=command,
                             on_epoch_end=after_epoch, log=log, progress=progress,
                             on_step=None if board is None else board.log_step)
        if board is not None and metrics and not board.log_projector(projected_model(model, out), data,
                                                                     metrics[-1]["step"]):
            (log or print)(f"tensorboard: {type(model).__name__} has no encoder, so no latent codes go to the "
                           f"embedding projector")
    except BaseException:
        if board is not None:
            board.close()  # what was logged stays; the hyperparameter table waits for a run that ends
        raise
    if board is not None:
        board.close(read_record(out), metrics[-1] if metrics else None)
    if writes and metrics:
        write_page(out)  # also when --resume found the run finished
    return metrics


def projected_model(model: nn.Module, out: str | Path) -> nn.Module:
    """The model whose codes go to the embedding projector: the run's as `evaluate` and `explore` load it (the
    moving average of the weights with --ema, else the best by validation loss, else the last), on the CPU."""
    return load_run(out, device="cpu").model


def train_planned(plan: RunPlan, out: Path, resume: bool = False, command: str = "",
                  log: Callable[[str], None] | None = None, progress: bool | None = None,
                  tensorboard: bool = False, tensorboard_every: int = STEP_INTERVAL) -> list[dict[str, Any]]:
    """`genlab train`: load the planned data, build the model from the seed, train into `out` with its report."""
    log = log or ((lambda line: print(line, flush=True)) if is_rank_zero() else (lambda line: None))
    spec, data_dir = plan.data["spec"], plan.data["data_dir"]
    data = load_dataset(spec, data_dir=data_dir, image_size=plan.data["image_size"], channels=plan.data["channels"])
    torch.manual_seed(plan.train.seed)  # model initialisation depends on the seed too
    fields = data_fields(plan.model, data.image_shape, len(data.classes), len(data.attribute_names),
                         plan.model_options)
    model = create_model(plan.model, **fields, **plan.model_options)
    record = data_record(data, spec, data_dir, plan.data["image_size"], plan.data["channels"])
    held_out = plan.train.val_images
    how = "a stratified sample from the seed" if plan.train.val_split == "stratified" else "the last images"
    split = (f"{data.train_x.shape[0] - held_out} train / {held_out} validation ({how})" if held_out
             else f"{data.train_x.shape[0]} train")
    device = resolve_device(plan.train.device)
    log(compute_line(device, torch.get_num_threads(), launched_world_size()))  # first
    for warning in (precision_warning(device, plan.train.precision),
                    compile_warning(device, plan.train.compile, has_convolutions(model))):
        if warning and is_rank_zero():
            log_to_stderr(warning)
    log(f"training {plan.model} on {data.name} {tuple(data.image_shape)}: "
        f"{split} / {data.test_x.shape[0]} test images -> {out}")
    if data.note:  # what loading did to the user's files (folder: skips, crops, resizes); stdout, beside the line
        log(data.note)  # above: a refusal that follows stays the one line on stderr
    return train(model, data, plan.train, out, resume=resume, data_spec=record, command=command, log=log,
                 progress=progress, tensorboard=tensorboard, tensorboard_every=tensorboard_every)


def train_command(model: str | None, model_flags: dict[str, Any], data_flags: dict[str, Any],
                  train_flags: dict[str, Any], config_file: str | None = None, out: str | None = None,
                  resume: bool = False, command: str = "", tensorboard: bool = False,
                  threads: int | None = None, tensorboard_every: int = STEP_INTERVAL) -> Path | None:
    """`genlab train`: plan the run (flags over --config or the resumed run's record), train it into its run
    directory with the report kept current; the report's path, on the process that writes it. `threads`: see
    genlab.threads.use_threads; the device and thread count are the first line printed.

    Under torchrun every process joins the job here; rank 0 plans from the files it holds and every rank trains
    that plan; the other ranks return None.
    """
    world = join(train_flags.get("device", "auto"))
    use_threads(threads)  # before any work, on every process; train_planned says how many
    plan, folder = from_rank_zero(world, lambda: plan_command(model, model_flags, data_flags, train_flags,
                                                              config_file, out, resume))
    train_planned(plan, folder, resume=resume, command=command, tensorboard=tensorboard,
                  tensorboard_every=tensorboard_every)
    return RunLayout(folder).report if world.writes else None


def announce(world: World, device: torch.device, threads: int) -> None:
    """The first line of a heavy command on stdout, on the process that prints: 'genlab on cpu, 1 thread (...)';
    said once the run has loaded, so that a refusal stays the one line on stderr."""
    if world.writes:
        print(compute_line(device, threads, world.size), flush=True)


def evaluate_command(run_dir: str | os.PathLike, options: EvaluationOptions, device: str = "auto",
                     weights: str = "best", data_dir: str | None = None,
                     log: Callable[[str], None] = log_to_stderr,
                     threads: int | None = None) -> tuple[dict[str, Any], Path, Path] | None:
    """`genlab evaluate`: every metric that applies to the run, kept beside it, and its report rewritten;
    (the evaluation, its file, the report) on the process that writes them. The device and thread count
    (`threads`: see genlab.threads.use_threads) are the first line printed.

    Under torchrun the expensive estimates are sharded over the processes; the other ranks return None.
    """
    device = resolve_device(device)
    world = join(device)
    count = use_threads(threads)
    with one_writer(run_dir, world):  # the run's evaluation and report have one writer at a time
        run = load_everywhere(world, run_dir, world.place(device), weights)
        announce(world, world.place(device), count)
        say = log if world.writes else (lambda line: None)
        warning = precision_warning(world.place(device), options.precision)
        if warning:
            say(warning)
        if run.weights_note():
            say(f"genlab: {run.weights_note()}")
        data = run.dataset(data_dir)
        progress = world.writes  # a bar on a terminal, else a line every ~10 s (genlab.progress)
        classifier = (cached_classifier(run.record, data, say, progress, world)
                      if needs_cached_classifier(run, options) else None)
        result = evaluate_run(run, data, options, progress, world, classifier)
        if not world.writes:
            return None
        return result, write_evaluation(run.path, result), write_page(run.path)
