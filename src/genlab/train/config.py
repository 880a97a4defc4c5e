"""TrainConfig: how a model is trained. Each field declares its help, choices and range once; the CLI's
flags are derived from it."""
from __future__ import annotations

from dataclasses import dataclass

from genlab.errors import ConfigError
from genlab.models.config import Config, option

PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
MAX_SEED = 2**63 - 1

# fields that say how a run is executed, not what it is: --resume may change them
EXECUTION_FIELDS = ("epochs", "max_steps", "lr", "device", "compile", "channels_last", "sync_bn")


WEIGHT_CHOICES = ("best", "last")  # the weights a run keeps: of the best validation loss, of the last epoch


@dataclass(frozen=True)
class TrainConfig(Config):
    epochs: int = option(10, "epochs to train", low=1, high=1_000_000)
    max_steps: int | None = option(None, "stop after this many optimizer steps in total", low=1, high=10**12)
    batch_size: int = option(128, "images per optimizer step; under torchrun the global batch, "
                                       "split evenly over the processes", low=1, high=1_000_000)
    lr: float = option(1e-3, "Adam learning rate; --resume may lower or raise it", low=1e-12)
    beta1: float = option(0.9, "Adam's first-moment decay (0.5 for GANs, after Radford et al.)", low=0.0, high=0.999)
    seed: int = option(0, "seeds initialisation, shuffling and noise", low=0, high=MAX_SEED)
    device: str = option("auto", "auto picks CUDA when present", DEVICES)
    binarize: str = option("none", "dynamic: train on fresh Bernoulli samples of the pixels each batch and test on "
                                   "one fixed-seed binarization, as in published binarized-data likelihoods",
                           ("none", "dynamic"))
    precision: str = option("fp32", "bf16: autocast the forward pass to bfloat16", PRECISIONS)
    compile: bool = option(False, "torch.compile the loss (GANs: both networks); costs seconds to minutes up front")
    channels_last: bool = option(False, "NHWC memory format for conv models (faster convs on many devices)")
    sync_bn: bool = option(False, "under torchrun on GPUs: batch-norm statistics over the global batch "
                                  "(SyncBatchNorm) instead of each process's share")
    val_images: int = option(0, "hold out the last N training images as a validation split (never the test "
                                "set); its loss is reported each epoch and drives --early-stop", low=0, high=10**9)
    kl_warmup: int = option(0, "KL warm-up: the KL weight rises linearly from 1/EPOCHS to 1 over the first EPOCHS "
                               "epochs (0: no warm-up); metrics also report the true bound", low=0, high=1_000_000)
    early_stop: int = option(0, "stop when the validation loss has not improved for PATIENCE epochs, keeping the "
                                "best weights beside the last (0: off; needs --val-images)", low=0, high=1_000_000)

    def __post_init__(self) -> None:
        if self.early_stop and not self.val_images:
            raise ConfigError("--early-stop watches the validation loss: give --val-images N as well "
                              "(e.g. --val-images 10000 holds out the last 10,000 training images)")
