"""One model-agnostic training loop: device-resident data, no host sync per step, resumable runs."""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from genlab.config import Config
from genlab.data.batches import (
    binarize_dynamic,
    binarize_fixed,
    check_batch_size,
    epoch_permutation,
    iter_ordered,
    to_unit_float,
)
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, RunError
from genlab.images import make_grid, save_png
from genlab.models.contract import AutoEncoder, Classifier, Generative
from genlab.models.registry import spec_name
from genlab.nn import memory_format
from genlab.options import TrainConfig
from genlab.progress import ProgressLines, progress_bar
from genlab.runs import layout
from genlab.runs import store as runs
from genlab.runs.layout import EPOCH_SAMPLES_PER_ROW, RunLayout
from genlab.runs.record import DataRecord, RunRecord, new_record
from genlab.training.average import WeightAverage
from genlab.training.schedule import LearningRate, Schedule
from genlab.training.steps import (
    build_step,
    check_attribute_targets,
    make_optimizers,
    model_loss,
    training_targets,
    wants_attributes,
)
from genlab.world import (
    World,
    diverged,
    from_rank_zero,
    gather_rng,
    join,
    peer_failures,
    rank_rng,
    resolve_device,
    shard,
    share_buffers,
    sum_over_ranks,
)

N_RECON = 8      # test images shown above their reconstructions each epoch
N_SAMPLES = 64   # fixed-noise samples drawn each epoch
# No genlab model's loss legitimately reaches 1e8 nats per image (a 64x64 RGB Bernoulli decoder at its worst
# is ~1e6); a finite loss past this has exploded just as surely as a NaN, so it stops the run the same way.
EXPLODED_LOSS = 1e8

def add_weighted(sums: Tensor | None, parts: dict[str, Tensor], weight: int) -> Tensor:
    """Running sums of the loss parts times batch size, one tensor on the device (no sync)."""
    stacked = torch.stack(list(parts.values()))
    return stacked * weight if sums is None else sums.add_(stacked, alpha=weight)


def read_means(names: list[str], sums: Tensor, count: int) -> dict[str, float]:
    """The one CPU-GPU sync point per pass: all parts come back in a single transfer."""
    return dict(zip(names, (sums / count).tolist()))


@torch.no_grad()
def held_out_loss(model: nn.Module, x: Tensor, y: Tensor | None = None, batch_size: int = 1000,
                  world: World = World()) -> dict[str, float]:
    """Mean loss parts over uint8 images x (N, C, H, W) and labels y (N,), in eval mode.

    Under torchrun each rank takes a share of the images (all of them when there are fewer images than ranks)
    and the sums are added up, so every rank returns the same numbers: the loop's decisions rest on them.
    """
    if len(x) >= world.size:
        share = shard(world, len(x))  # narrow: a view, and packed images stay packed (data/packed.py)
        x = x.narrow(0, share.start, share.stop - share.start)
        y = None if y is None else y.narrow(0, share.start, share.stop - share.start)
    was_training = model.training
    model.eval()
    sums, names = None, []
    for start, batch in zip(range(0, x.shape[0], batch_size), iter_ordered(x, batch_size)):
        labels = None if y is None else y[start:start + batch_size]
        parts = model_loss(model, batch, labels)
        sums, names = add_weighted(sums, parts, batch.shape[0]), list(parts)
    model.train(was_training)
    sums, count = sum_over_ranks(world, sums, x.shape[0])
    return read_means(names, sums, count)


@torch.no_grad()
def epoch_images(model: nn.Module, test_x: Tensor, seed: int) -> dict[str, Tensor]:
    """Reconstruction grid (test images above reconstructions) and fixed-noise samples."""
    model.eval()
    images = {}
    if isinstance(model, AutoEncoder):
        x = to_unit_float(test_x[:N_RECON])
        images["recon"] = make_grid(torch.cat([x, model.reconstruct(x)]).cpu(), nrow=N_RECON)
    if isinstance(model, Generative):
        noise = torch.Generator().manual_seed(seed)  # same noise every epoch: samples are comparable
        images["samples"] = make_grid(model.sample(N_SAMPLES, generator=noise).cpu(), nrow=EPOCH_SAMPLES_PER_ROW)
    model.train()
    return images


class Trainer:
    """Trains `model` on `data`; with `out`, keeps a resumable run directory there."""

    def __init__(self, model: nn.Module, data: Dataset, config: TrainConfig, out: Path | None = None,
                 log: Callable[[str], None] | None = None, progress: bool | None = None,
                 world: World = World()) -> None:
        self.model, self.data, self.config, self.out, self.world = model, data, config, out, world
        self.device = world.place(resolve_device(config.device))
        self.log = log or (lambda line: print(line, flush=True))
        self.progress = True if progress is None else progress  # a bar on a terminal, else a line every ~10 s
        if not world.writes:  # under torchrun rank 0 alone prints
            self.log, self.progress = (lambda line: None), False
        self.memory_format = memory_format(model, self.device, config.channels_last)
        self.model.to(self.device, memory_format=self.memory_format)
        self.optimizers = make_optimizers(model, config.lr, config.beta1, config.weight_decay, config.clip_grad)
        self.rate = LearningRate(config, self.optimizers)  # warm-up and schedule, set before each step
        self.average = WeightAverage(model, config.ema) if config.ema else None  # --ema, updated after each step
        self.schedule = Schedule(config, model, self.device)  # validation split, KL warm-up, early stopping
        self.step_fn = build_step(world, model, self.optimizers, config.precision, config.compile,
                                              config.sync_bn, self.schedule.loss_options())
        self.needs_labels = isinstance(model, Classifier)
        train_y, test_y = training_targets(model, data)
        train_x, train_y, val_x, val_y = self.schedule.split(data.train_x, train_y)
        self.train_x = train_x.to(self.device)  # uint8 on the device: 1/4 the memory of float
        self.val_x, self.val_y = val_x.to(self.device), val_y.to(self.device)
        test_x = binarize_fixed(data.test_x) if config.binarize == "dynamic" else data.test_x
        self.test_x = test_x.to(self.device)
        self.train_y, self.test_y = train_y.to(self.device), test_y.to(self.device)
        self.epoch, self.step, self.metrics = 0, 0, []
        self.on_step: Callable[[int, dict[str, Tensor], int, float | None], None] | None = None
        self.new_record: RunRecord | None = None  # a resumed run's changed record, committed with its next epoch

    def drops_last_batch(self) -> bool:
        """A last batch of one image (per process) is skipped: batch norm cannot normalise a single example."""
        return self.world.drops_last_batch(self.train_x.shape[0], self.config.batch_size)

    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_x.shape[0] / self.config.batch_size) - self.drops_last_batch()

    def total_steps(self) -> int:
        total = self.config.epochs * self.steps_per_epoch()
        return min(total, self.config.max_steps) if self.config.max_steps else total

    def finished(self) -> bool:
        return self.epoch >= self.config.epochs or self.step >= self.total_steps() or self.schedule.stopped

    def state(self) -> dict[str, Any]:
        state = {"epoch": self.epoch, "step": self.step, "rng_cpu": torch.get_rng_state(),
                 "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
                 "schedule": self.schedule.state_dict()}
        if self.average is not None:
            state["ema"] = self.average.state_dict()
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checked checkpoint: weights, optimizers, RNG streams, counters and metrics."""
        source = RunLayout(self.out).state if self.out else Path(layout.STATE)
        runs.apply_weights(self.model, state["model"], source)
        if set(state["optimizers"]) != set(self.optimizers):
            raise RunError(f"{source} holds optimizers {sorted(state['optimizers'])}, but this model trains with "
                           f"{sorted(self.optimizers)}: it is a checkpoint of another model")
        for name, optimizer in self.optimizers.items():
            built = [group["lr"] for group in optimizer.param_groups]  # --lr, or an auxiliary network's own
            try:
                optimizer.load_state_dict(state["optimizers"][name])
            except (ValueError, KeyError, TypeError, RuntimeError) as err:
                raise RunError(f"{source}: the {name} optimizer state does not fit this model "
                               f"({str(err)[:120]}); delete the run or restore the file") from None
            for group, lr in zip(optimizer.param_groups, built):
                group["lr"] = lr  # --resume may change the learning rate
        try:
            rng_cpu, rng_cuda = (rank_rng(self.world, state, name) for name in ("rng_cpu", "rng_cuda"))
            if rng_cpu is not None:
                torch.set_rng_state(rng_cpu)
            if rng_cuda is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng_cuda, self.device)
        except (RuntimeError, TypeError) as err:
            raise RunError(f"{source}: the random-number state is damaged ({str(err)[:120]})") from None
        self.epoch, self.step, self.metrics = state["epoch"], state["step"], list(state["metrics"])
        self.schedule.load_state_dict(state.get("schedule"))
        if self.average is not None:
            self.average.load_state_dict(state.get("ema"), source)

    def run_epoch(self, bar: tqdm | ProgressLines) -> dict[str, Any]:
        """Train one epoch (or up to max_steps), then evaluate; returns the metrics record."""
        self.model.train()
        controls = self.schedule.start_epoch(self.epoch + 1)
        perm = epoch_permutation(self.train_x.shape[0], self.config.seed, self.epoch, self.device)
        start, sums, seen, last_step = time.perf_counter(), None, 0, self.total_steps()
        check_batch_size(self.config.batch_size)
        for indices in self.world.batch_indices(perm, self.config.batch_size, self.drops_last_batch()):
            # index_select, not x[idx]: advanced indexing is ~10x slower for this gather on CPU; the method, so
            # that packed images (data/packed.py) unpack just the batch
            x = to_unit_float(self.train_x.index_select(0, indices))
            y = torch.index_select(self.train_y, 0, indices) if self.needs_labels else None
            if self.config.binarize == "dynamic":
                x = binarize_dynamic(x)
            if self.memory_format == torch.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.rate.active:
                controls["lr"] = self.config.lr * self.rate.set(self.step, last_step)
            parts = self.step_fn(x, y)
            if self.average is not None:
                self.average.update()
            sums = add_weighted(sums, parts, x.shape[0])
            seen += x.shape[0]
            self.step += 1
            if self.on_step is not None:  # --tensorboard: the parts stay tensors, read back once per interval
                self.on_step(self.step, parts, x.shape[0], controls.get("lr"))
            bar.update(1)
            if self.step >= last_step:
                break
        names = list(parts)
        sums, seen = sum_over_ranks(self.world, sums, seen)
        train_means = read_means(names, sums, seen)  # syncs, so the timing below is honest on a GPU
        share_buffers(self.world, self.model)
        seconds = time.perf_counter() - start
        self.epoch += 1
        record = {"epoch": self.epoch, "step": self.step, "epoch_seconds": round(seconds, 4), **controls,
                  "train": train_means}
        # every rank gets the same numbers, so every rank judges the epoch (diverged, best, stop) alike
        if self.val_x.shape[0]:
            record["val"] = held_out_loss(self.model, self.val_x, self.val_y, world=self.world)
        return {**record, "test": held_out_loss(self.model, self.test_x, self.test_y, world=self.world)}

    def check_finite(self, record: dict[str, Any]) -> None:
        """Stop on a NaN, infinite or exploded loss, saying what was kept."""
        bad = [f"{split} {name}" for split in ("train", "val", "test") for name, v in record.get(split, {}).items()
               if not math.isfinite(v) or abs(v) > EXPLODED_LOSS]
        if not bad:
            return
        if self.out is None:
            kept = ""
        elif self.epoch > 1:
            kept = f"; the last good checkpoint (epoch {self.epoch - 1}) in {self.out} is kept"
        else:
            kept = f"; no epoch completed, so {self.out} holds no checkpoint"
        raise diverged(  # under torchrun every rank sees the all-reduced NaN; rank 0 says so
            self.world, f"training diverged at epoch {record['epoch']}: {', '.join(bad)} became NaN or infinite "
                        f"(or passed {EXPLODED_LOSS:.0e}){kept}; try a smaller --lr (now {self.config.lr})")

    def save(self, record: dict[str, Any], best: bool = False) -> None:
        """Per-epoch images, then the epoch committed as one unit (weights, state, metrics; with `best`, the
        weights also as the best so far)."""
        rng_ranks = gather_rng(self.world, self.device)  # every rank takes part
        if self.out is not None:  # rank 0 commits; its refusal (a full disk, a non-finite state) stops every rank
            from_rank_zero(self.world, lambda: self.commit(record, best, rng_ranks))

    def commit(self, record: dict[str, Any], best: bool, rng_ranks: dict[str, Any]) -> None:
        """The writing part of save(), on rank 0 alone."""
        with self.average.applied() if self.average is not None else contextlib.nullcontext():
            grids = epoch_images(self.model, self.test_x, self.config.seed)  # samples of the average, with --ema
        for name, grid in grids.items():
            save_png(grid, RunLayout(self.out).epoch_image(name, record["epoch"]))
        averaged = None if self.average is None else self.average.model_weights(self.model)
        runs.commit_epoch(self.out, self.model, {**self.state(), **rng_ranks}, self.metrics, self.new_record,
                          best=best, averaged=averaged)
        self.new_record = None

    def describe(self, record: dict[str, Any]) -> str:
        def parts(split: str) -> str:
            values = record[split]
            rest = ", ".join(f"{k} {v:.2f}" for k, v in values.items() if k != "loss")
            return f"{values['loss']:.2f}" + (f" ({rest})" if rest else "")
        val = f"val loss {parts('val')}  " if "val" in record else ""
        warm = f"KL weight {record['kl_weight']:.2f}  " if "kl_weight" in record else ""
        if all(name in record["train"] for name in GAN_GAME):
            return f"epoch {record['epoch']}/{self.config.epochs}  {gan_text(record)}  {record['epoch_seconds']:.2f} s"
        return (f"epoch {record['epoch']}/{self.config.epochs}  {warm}train loss {parts('train')}  {val}"
                f"test loss {parts('test')}  {record['epoch_seconds']:.2f} s")

    def fit(self, on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Run the remaining epochs; checkpoint and report after each."""
        with progress_bar(self.total_steps(), initial=self.step, enabled=self.progress) as bar:
            while not self.finished():
                bar.set_description(f"epoch {self.epoch + 1}/{self.config.epochs}")
                record = self.run_epoch(bar)
                self.check_finite(record)
                best = self.schedule.end_epoch(record)
                self.metrics.append(record)
                self.save(record, best)
                bar.clear()
                self.log(self.describe(record))
                if self.schedule.stopped:
                    self.log(early_stop_line(self.schedule, self.config.early_stop))
                if on_epoch_end:
                    on_epoch_end(record)
        return self.metrics


GAN_GAME = ("d_real", "d_fake", "d_loss", "g_loss")  # a GAN's training figures, in the order they are said


def gan_text(record: dict[str, Any]) -> str:
    """A GAN's epoch as the game on the training batches: D(x), D(G(z)), both losses. Their sum means nothing,
    and the held-out figures run D in eval mode on batch-norm running statistics (the report explains them)."""
    train = record["train"]
    return (f"D(x) {train['d_real']:.2f}, D(G(z)) {train['d_fake']:.2f}, "
            f"D loss {train['d_loss']:.2f}, G loss {train['g_loss']:.2f} (training batches)")


def early_stop_line(schedule: Schedule, patience: int) -> str:
    stopping = schedule.stopping
    return (f"early stopping: no better validation loss in {patience} epochs; the best, {stopping.best:.2f} at "
            f"epoch {stopping.best_epoch}, is kept as {layout.BEST_WEIGHTS} beside the last weights")


def check_trainable(model: nn.Module, data: Dataset, config: TrainConfig, out: Path | None) -> str | None:
    """Fail before anything is built or written: wrong kinds, shapes, or too little data. Returns the model's
    registry name (None for an unregistered model trained without a run directory)."""
    if not isinstance(model, nn.Module) or not callable(getattr(model, "loss", None)):
        raise ConfigError(f"train() needs a torch.nn.Module with a loss(x) method, got {type(model).__name__}")
    if not isinstance(data, Dataset):
        raise ConfigError(f"train() needs a genlab Dataset (see genlab.load_dataset), got {type(data).__name__}")
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"train() needs a TrainConfig, got {type(config).__name__}")
    name = spec_name(model)
    if out is not None and (name is None or not isinstance(getattr(model, "config", None), Config)):
        raise ConfigError(f"{type(model).__name__} is not a registered genlab model, so a run directory could not "
                          f"load it again: register it with genlab.register_model(name, {type(model).__name__}, "
                          f"ItsConfig) and build it from its config (see docs/extending.md), or train without out=")
    shape = getattr(getattr(model, "config", None), "image_shape", None)
    if shape is not None and tuple(data.image_shape) != tuple(shape):
        raise ConfigError(f"the model expects images of shape {tuple(shape)} "
                          f"but {data.name} has {tuple(data.image_shape)}")
    check_enough_data(data)
    if wants_attributes(model):
        check_attribute_targets(model, data)
    return name


def check_enough_data(data: Dataset) -> None:
    """At least one training step per epoch and one test image."""
    n_train = data.train_x.shape[0]
    if n_train < 2:
        raise ConfigError(f"{data.name} has {n_train} training image(s); training needs at least 2 "
                          f"(a batch of one cannot be batch-normalised)")
    if data.test_x.shape[0] == 0:
        raise ConfigError(f"{data.name} has no test images; a run needs at least one to report a test loss")


def train(model: nn.Module, data: Dataset, config: TrainConfig = TrainConfig(), out: str | Path | None = None,
          resume: bool = False, data_spec: DataRecord | None = None, command: str = "",
          on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
          log: Callable[[str], None] | None = None, progress: bool | None = None,
          on_step: Callable[[int, dict[str, Tensor], int, float | None], None] | None = None) -> list[dict[str, Any]]:
    """Train a model on a dataset; with `out`, keep a resumable run directory there. `on_step(step, parts,
    batch_size, lr)` follows every optimizer step (parts: the loss tensors, unsynced; lr: None without a schedule).

    Returns one metrics record per epoch (losses in the model's units, nats per image for VAEs).
    Nothing is written until the data, model and device have been checked.
    """
    out = Path(out) if out is not None else None
    name = check_trainable(model, data, config, out)
    world = join(resolve_device(config.device))  # fails before the run directory exists
    world.check_batch_size(config.batch_size)
    torch.manual_seed(world.seed(config.seed))
    with peer_failures(world):
        trainer = Trainer(model, data, config, out, log=log, progress=progress, world=world)
        trainer.on_step = on_step
        record = new_record(name, model.config, data, config, data_spec, command) if out else None
        state = from_rank_zero(world, lambda: runs.open_run(out, resume, record)) if out else None
        if state is not None:
            trainer.restore(state)
            trainer.new_record = runs.resumed_record(out, record) if world.writes else None
            if trainer.finished():
                trainer.log(f"{out} already finished {trainer.epoch} epoch(s); raise --epochs to train further")
        return trainer.fit(on_epoch_end)
