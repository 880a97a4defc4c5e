"""The controls around the training loop: a validation split, KL warm-up, early stopping and the learning rate.

Their state (best validation loss, its epoch, the patience counter) goes into the checkpoint with every epoch,
so --resume continues exactly where a run stopped; the warm-up position follows from the epoch alone, and the
learning rate from the optimizer step alone.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from genlab.data.batches import binarize_fixed
from genlab.data.packed import PackedImages
from genlab.errors import ConfigError
from genlab.options import LR_SCHEDULES, VAL_SPLITS, TrainConfig

BINARIZE_VAL_SEED = 1  # the validation split's one binarization (the test set's uses seed 0)


def split_validation(x: Tensor, y: Tensor, n: int, method: str = "last",
                     seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(train_x, train_y, val_x, val_y): n training images held out, the same ones on every run and every rank.

    "stratified": a random sample drawn from `seed`, each class in its share of n; "last": the last n images (the
    only split before val_split existed, which the runs recorded then keep).
    """
    if n == 0:
        return x, y, x[:0], y[:0]
    if n >= x.shape[0] - 1:
        raise ConfigError(f"--val-images {n} leaves fewer than 2 of the {x.shape[0]:,} training images to train "
                          f"on; hold out fewer (the published Fashion-MNIST protocol holds out 10000 of 60000)")
    if method == "stratified":
        held_out = torch.zeros(len(y), dtype=torch.bool)
        held_out[stratified_sample(y.cpu(), n, seed)] = True
        train, val = (torch.nonzero(mask).flatten() for mask in (~held_out, held_out))
        return take(x, train), y[train.to(y.device)], take(x, val), y[val.to(y.device)]
    if method != "last":
        raise ConfigError(f"val_split must be one of {', '.join(VAL_SPLITS)}, not {method!r}")
    kept = x.shape[0] - n  # narrow, not x[:-n]: a view of packed images too (data/packed.py), not a copy
    return x.narrow(0, 0, kept), y[:-n], x.narrow(0, kept, n), y[-n:]


def stratified_sample(y: Tensor, n: int, seed: int) -> Tensor:
    """Indices of n of the labels y (N,), drawn at random from `seed`: each class gives its share of n, the spare
    places going to the classes with the largest fractional shares (largest remainders). Labels (N, A) (an
    attribute classifier's rows) stratify by row: each combination of attributes is a class."""
    if y.dim() > 1:
        _, y = torch.unique(y, dim=0, return_inverse=True)
    classes, counts = torch.unique(y, return_counts=True)
    shares = counts.double() * n / len(y)
    quotas = shares.floor().long()
    spare = n - int(quotas.sum())
    quotas[torch.argsort(shares - quotas, descending=True, stable=True)[:spare]] += 1
    draw = torch.Generator().manual_seed(seed)  # a CPU stream of its own: every rank and machine draws alike
    picks = [torch.nonzero(y == label).flatten()[torch.randperm(int(count), generator=draw)[:int(quota)]]
             for label, count, quota in zip(classes, counts, quotas)]
    return torch.cat(picks)


def take(x: Tensor | PackedImages, index: Tensor) -> Tensor | PackedImages:
    """The images of x at `index`, held as x holds them: packed images stay packed."""
    if isinstance(x, PackedImages):
        return PackedImages(torch.index_select(x.bits, 0, index.to(x.device)), x.image_shape)
    return torch.index_select(x, 0, index.to(x.device))


def kl_weight(epoch: int, warmup: int) -> float:
    """The KL weight during 1-based `epoch`: epoch / warmup, reaching 1 at epoch `warmup` (1 without warm-up)."""
    return 1.0 if warmup == 0 else min(1.0, epoch / warmup)


def lr_factor(step: int, total: int, schedule: str = "constant", warmup: int = 0, every: int = 1,
              gamma: float = 0.1) -> float:
    """The learning rate of 0-based optimizer step `step` of `total`, as a multiple of --lr: (step + 1) / warmup
    during the warm-up, times the schedule's decay over t = step - warmup of the total - warmup steps after it:
    cosine 1/2 (1 + cos(pi t / (total - warmup))), step gamma^floor(t / every), constant 1."""
    if schedule not in LR_SCHEDULES:
        raise ConfigError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {schedule!r}")
    warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
    t = max(0, step - warmup)
    if schedule == "cosine":
        return warm * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t / max(1, total - warmup))))
    if schedule == "step":
        return warm * gamma ** (t // every)
    return warm


class LearningRate:
    """Sets every optimizer's rate before each step: the rate it was built with (--lr, or an auxiliary network's
    own) times lr_factor. A Python float per parameter group: no tensor, no host sync."""

    def __init__(self, config: TrainConfig, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        self.config, self.optimizers = config, optimizers
        self.built = {name: [group["lr"] for group in opt.param_groups] for name, opt in optimizers.items()}
        self.active = config.lr_schedule != "constant" or config.lr_warmup > 0

    def set(self, step: int, total: int) -> float:
        """Set the rates of 0-based step `step` of `total`; returns the factor."""
        c = self.config
        factor = lr_factor(step, total, c.lr_schedule, c.lr_warmup, c.lr_step, c.lr_gamma)
        for name, optimizer in self.optimizers.items():  # after a restore the groups are new dicts: look them up
            for group, built in zip(optimizer.param_groups, self.built[name]):
                group["lr"] = built * factor
        return factor


@dataclass
class EarlyStopping:
    """Patience on the validation loss: stop after `patience` epochs past warm-up without a new best."""

    patience: int
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False

    def update(self, value: float, epoch: int, warming_up: bool) -> bool:
        """Record epoch's validation loss; True when it is a new best (its weights are then kept)."""
        if value < self.best:  # a NaN is never better
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        # during warm-up the objective itself is still changing: a flat stretch then is no reason to stop
        self.bad_epochs = 0 if warming_up else self.bad_epochs + 1
        self.stopped = self.patience > 0 and self.bad_epochs >= self.patience
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "stopped": self.stopped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.bad_epochs, self.stopped = int(state["bad_epochs"]), bool(state["stopped"])


def accepts_kl_weight(model: nn.Module) -> bool:
    return "kl_weight" in inspect.signature(model.loss).parameters


class Schedule:
    """Validation split, KL weight and early stopping for one run; the trainer calls it at three points."""

    def __init__(self, config: TrainConfig, model: nn.Module, device: torch.device) -> None:
        if config.kl_warmup and not accepts_kl_weight(model):
            raise ConfigError(f"--kl-warmup needs a model whose loss takes a KL weight (the VAE family); "
                              f"{type(model).__name__} has no KL term to warm up")
        self.config = config
        self.stopping = EarlyStopping(config.early_stop)
        # a device tensor filled once per epoch: the captured step reads it without recompiling or syncing
        self.weight = torch.ones((), device=device) if config.kl_warmup else None

    def split(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Training and validation images; the validation images binarized once for dynamic runs."""
        train_x, train_y, val_x, val_y = split_validation(x, y, self.config.val_images, self.config.val_split,
                                                          self.config.seed)
        if self.config.binarize == "dynamic":
            val_x = binarize_fixed(val_x, BINARIZE_VAL_SEED)
        return train_x, train_y, val_x, val_y

    def loss_options(self) -> dict[str, Tensor]:
        """Keyword arguments of model.loss during training: the KL weight under warm-up."""
        return {} if self.weight is None else {"kl_weight": self.weight}

    def start_epoch(self, epoch: int) -> dict[str, Any]:
        """Set the KL weight for 1-based `epoch`; the metrics fields that say so."""
        if self.weight is None:
            return {}
        value = kl_weight(epoch, self.config.kl_warmup)
        self.weight.fill_(value)
        return {"kl_weight": value}

    def end_epoch(self, record: dict[str, Any]) -> bool:
        """Judge the epoch by its validation loss (record["val"]); True when its weights are the best so far."""
        if "val" not in record:
            return False
        improved = self.stopping.update(record["val"]["loss"], record["epoch"],
                                        record["epoch"] < self.config.kl_warmup)
        record["best_epoch"] = self.stopping.best_epoch
        if self.config.early_stop:
            record["patience_left"] = self.config.early_stop - self.stopping.bad_epochs
        return improved

    @property
    def stopped(self) -> bool:
        return self.stopping.stopped

    def state_dict(self) -> dict[str, Any]:
        return self.stopping.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is not None:  # runs written before these controls existed have none
            self.stopping.load_state_dict(state)
