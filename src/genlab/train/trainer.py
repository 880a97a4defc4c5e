"""One model-agnostic training loop: device-resident data, no host sync per step, resumable runs."""
from __future__ import annotations

import datetime
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from genlab.data.batches import (
    binarize_dynamic,
    binarize_fixed,
    epoch_permutation,
    iter_batches,
    iter_ordered,
    to_unit_float,
)
from genlab.data.catalog import Dataset
from genlab.errors import ConfigError, RunError, TrainingError
from genlab.images import make_grid, save_png
from genlab.models.config import Config, require
from genlab.models.contract import AutoEncoder, Classifier, Generative
from genlab.train import checkpoint as ckpt
from genlab.train.steps import PRECISIONS, make_optimizers, make_step, model_loss
from genlab.version import __version__

N_RECON = 8      # test images shown above their reconstructions each epoch
N_SAMPLES = 64   # fixed-noise samples drawn each epoch


@dataclass(frozen=True)
class TrainConfig(Config):
    epochs: int = 10
    max_steps: int | None = None     # stop after this many optimizer steps in total
    batch_size: int = 128
    lr: float = 1e-3
    beta1: float = 0.9               # Adam's first-moment decay (0.5 for GANs, after Radford et al.)
    seed: int = 0
    device: str = "auto"             # "auto" | "cpu" | "cuda"
    binarize: str = "none"           # "dynamic": fresh Bernoulli pixels each batch, a fixed-seed binary test set
    precision: str = "fp32"          # "bf16": autocast the forward pass to bfloat16
    compile: bool = False            # torch.compile the loss (or, for GANs, both networks)
    channels_last: bool = False      # NHWC memory format for conv models (faster convs on many devices)

    def __post_init__(self) -> None:
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(self.max_steps is None or self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(0 <= self.beta1 < 1, f"beta1 must be in [0, 1), got {self.beta1}")
        require(self.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, not {self.device!r}")
        require(self.binarize in ("none", "dynamic"), f"binarize must be none or dynamic, not {self.binarize!r}")
        require(self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is an error, not a silent CPU run."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def add_weighted(sums: Tensor | None, parts: dict[str, Tensor], weight: int) -> Tensor:
    """Running sums of the loss parts times batch size, one tensor on the device (no sync)."""
    stacked = torch.stack(list(parts.values()))
    return stacked * weight if sums is None else sums.add_(stacked, alpha=weight)


def read_means(names: list[str], sums: Tensor, count: int) -> dict[str, float]:
    """The one CPU-GPU sync point per pass: all parts come back in a single transfer."""
    return dict(zip(names, (sums / count).tolist()))


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor | None = None, batch_size: int = 1000) -> dict[str, float]:
    """Mean loss parts over uint8 images x (N, C, H, W) and labels y (N,), in eval mode."""
    was_training = model.training
    model.eval()
    sums, names = None, []
    for start, batch in zip(range(0, x.shape[0], batch_size), iter_ordered(x, batch_size)):
        labels = None if y is None else y[start:start + batch_size]
        parts = model_loss(model, batch, labels)
        sums, names = add_weighted(sums, parts, batch.shape[0]), list(parts)
    model.train(was_training)
    return read_means(names, sums, x.shape[0])


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
        images["samples"] = make_grid(model.sample(N_SAMPLES, generator=noise).cpu(), nrow=8)
    model.train()
    return images


class Trainer:
    """Trains `model` on `data`; with `out`, keeps a resumable run directory there."""

    def __init__(self, model: nn.Module, data: Dataset, config: TrainConfig, out: Path | None = None,
                 log: Callable[[str], None] | None = None, progress: bool | None = None) -> None:
        self.model, self.data, self.config, self.out = model, data, config, out
        self.device = resolve_device(config.device)
        self.log = log or (lambda line: print(line, flush=True))
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=self.memory_format)
        self.optimizers = make_optimizers(model, config.lr, config.beta1)
        self.step_fn = make_step(model, self.optimizers, config.precision, config.compile)
        self.needs_labels = isinstance(model, Classifier)
        self.train_x = data.train_x.to(self.device)  # uint8 on the device: 1/4 the memory of float
        test_x = binarize_fixed(data.test_x) if config.binarize == "dynamic" else data.test_x
        self.test_x = test_x.to(self.device)
        self.train_y, self.test_y = data.train_y.to(self.device), data.test_y.to(self.device)
        self.epoch, self.step, self.metrics = 0, 0, []

    def drops_last_batch(self) -> bool:
        """A last batch of one image is skipped: batch norm cannot normalise a single example."""
        return self.train_x.shape[0] % self.config.batch_size == 1

    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_x.shape[0] / self.config.batch_size) - self.drops_last_batch()

    def total_steps(self) -> int:
        total = self.config.epochs * self.steps_per_epoch()
        return min(total, self.config.max_steps) if self.config.max_steps else total

    def finished(self) -> bool:
        return self.epoch >= self.config.epochs or self.step >= self.total_steps()

    def state(self) -> dict[str, Any]:
        state = {"epoch": self.epoch, "step": self.step, "rng_cpu": torch.get_rng_state(),
                 "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()}}
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def restore(self, state: dict[str, Any]) -> None:
        ckpt.apply_weights(self.model, state["model"], self.out / ckpt.STATE_FILE)
        saved = state["optimizers"] if "optimizers" in state else {"model": state["optimizer"]}  # older runs
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(saved[name])
            for group in optimizer.param_groups:
                group["lr"] = self.config.lr  # the command line wins over the checkpoint's learning rate
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        self.epoch, self.step, self.metrics = state["epoch"], state["step"], list(state["metrics"])

    def run_epoch(self, bar: tqdm) -> dict[str, Any]:
        """Train one epoch (or up to max_steps), then evaluate; returns the metrics record."""
        self.model.train()
        perm = epoch_permutation(self.train_x.shape[0], self.config.seed, self.epoch, self.device)
        start, sums, seen, last_step = time.perf_counter(), None, 0, self.total_steps()
        for offset, x in zip(range(0, len(perm), self.config.batch_size),
                             iter_batches(self.train_x, perm, self.config.batch_size, self.drops_last_batch())):
            y = (torch.index_select(self.train_y, 0, perm[offset:offset + self.config.batch_size])
                 if self.needs_labels else None)
            if self.config.binarize == "dynamic":
                x = binarize_dynamic(x)
            if self.config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            parts = self.step_fn(x, y)
            sums = add_weighted(sums, parts, x.shape[0])
            seen += x.shape[0]
            self.step += 1
            bar.update(1)
            if self.step >= last_step:
                break
        names = list(parts)
        train_means = read_means(names, sums, seen)  # syncs, so the timing below is honest on a GPU
        seconds = time.perf_counter() - start
        self.epoch += 1
        return {"epoch": self.epoch, "step": self.step, "epoch_seconds": round(seconds, 4),
                "train": train_means, "test": evaluate(self.model, self.test_x, self.test_y)}

    def check_finite(self, record: dict[str, Any]) -> None:
        bad = [f"{split} {name}" for split in ("train", "test") for name, v in record[split].items()
               if not math.isfinite(v)]
        if bad:
            kept = f"; the last good checkpoint in {self.out} is untouched" if self.out else ""
            raise TrainingError(f"training diverged at epoch {record['epoch']}: {', '.join(bad)} became "
                                f"NaN or infinite{kept}; try a smaller --lr (now {self.config.lr})")

    def save(self, record: dict[str, Any]) -> None:
        if self.out is None:
            return
        for name, grid in epoch_images(self.model, self.test_x, self.config.seed).items():
            save_png(grid, self.out / "images" / f"{name}_epoch{record['epoch']:03d}.png")
        ckpt.save_checkpoint(self.out, self.model, self.state(), self.metrics)

    def describe(self, record: dict[str, Any]) -> str:
        def parts(split: str) -> str:
            values = record[split]
            rest = ", ".join(f"{k} {v:.2f}" for k, v in values.items() if k != "loss")
            return f"{values['loss']:.2f}" + (f" ({rest})" if rest else "")
        return (f"epoch {record['epoch']}/{self.config.epochs}  train loss {parts('train')}  "
                f"test loss {parts('test')}  {record['epoch_seconds']:.2f} s")

    def fit(self, on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Run the remaining epochs; checkpoint and report after each."""
        with tqdm(total=self.total_steps(), initial=self.step, disable=not self.progress,
                  unit="step", dynamic_ncols=True, leave=False, file=sys.stderr) as bar:
            while not self.finished():
                bar.set_description(f"epoch {self.epoch + 1}/{self.config.epochs}")
                record = self.run_epoch(bar)
                self.check_finite(record)
                self.metrics.append(record)
                self.save(record)
                bar.clear()
                self.log(self.describe(record))
                if on_epoch_end:
                    on_epoch_end(record)
        return self.metrics


def run_config(model: nn.Module, data: Dataset, config: TrainConfig, extra: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to reproduce the run, as written to config.json."""
    return {
        "model": getattr(model, "model_name", type(model).__name__.lower()),
        "model_config": model.config.to_dict(),
        "data": {"name": data.name, "image_shape": list(data.image_shape), "source": data.source,
                 **extra.pop("data", {})},
        "train": config.to_dict(),
        "versions": {"genlab": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        **extra,
    }


def prepare_run_dir(out: Path, resume: bool, run_cfg: dict[str, Any]) -> dict[str, Any] | None:
    """Fresh run: refuse to overwrite, write config.json. Resume: check it is the same model; return the state."""
    if not resume or not (out.exists() and any(out.iterdir())):
        if out.exists() and any(out.iterdir()):
            raise RunError(f"{out} already exists and is not empty; pass --resume to continue it, "
                           f"or choose another --out")
        out.mkdir(parents=True, exist_ok=True)
        ckpt.atomic_write_text(out / ckpt.CONFIG_FILE, ckpt.json_dumps(run_cfg))
        return None
    saved = ckpt.read_run_config(out)
    if saved["model"] != run_cfg["model"]:
        raise RunError(f"{out} holds a {saved['model']!r} run, not {run_cfg['model']!r}; "
                       f"resume it with `genlab train {saved['model']} --resume --out {out}`")
    if saved["model_config"] != ckpt.json_roundtrip(run_cfg["model_config"]):
        raise RunError(f"the model options differ from those {out} was trained with; "
                       f"repeat the original command with --resume")
    if not (out / ckpt.STATE_FILE).exists():
        return None  # killed before the first checkpoint: nothing to resume, start afresh
    return ckpt.load_state(out)


def train(model: nn.Module, data: Dataset, config: TrainConfig = TrainConfig(), out: str | Path | None = None,
          resume: bool = False, extra: dict[str, Any] | None = None,
          on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
          log: Callable[[str], None] | None = None, progress: bool | None = None) -> list[dict[str, Any]]:
    """Train a registered model on a dataset; with `out`, write a resumable run directory.

    Returns one metrics record per epoch (losses in the model's units, nats per image for VAEs).
    """
    out = Path(out) if out is not None else None
    if tuple(data.image_shape) != tuple(model.config.image_shape):
        raise ConfigError(f"the model expects images of shape {tuple(model.config.image_shape)} "
                          f"but {data.name} has {tuple(data.image_shape)}")
    state = None
    if out is not None:
        state = prepare_run_dir(out, resume, run_config(model, data, config, dict(extra or {})))
    if state is None:
        torch.manual_seed(config.seed)
    trainer = Trainer(model, data, config, out, log=log, progress=progress)
    if state is not None:
        trainer.restore(state)
        if trainer.finished():
            trainer.log(f"{out} already finished {trainer.epoch} epoch(s); raise --epochs to train further")
    return trainer.fit(on_epoch_end)
