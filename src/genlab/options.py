"""The option sets that are not a model's, without torch, so that the command line builds their flags before
anything heavy is imported: TrainConfig (how a model is trained), EvaluationOptions (what `genlab evaluate`
measures), and the limits a command's help states."""
from __future__ import annotations

from dataclasses import dataclass

from genlab.config import Config, option
from genlab.errors import ConfigError

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

MAX_DEFAULT_TRAVERSAL_ROWS = 10  # rows of a traversal when no --dims are given: a 100-d DCGAN would make 100
MAX_DECODES = 4096  # decoder evaluations per pass of the IWAE estimate: bounds memory; see metrics.iwae_nll


@dataclass(frozen=True)
class EvaluationOptions(Config):
    """What `evaluate_run` measures and on how much data."""

    k: int = option(1000, "importance samples per image for the IWAE NLL", high=1_000_000)
    test_images: int | None = option(None, "use the first N test images for every metric (default all)",
                                     high=10**9)
    nll_images: int | None = option(None, "estimate the IWAE NLL on the first N of them (default all)", high=10**9)
    fid_samples: int = option(10000, "model samples for the Fréchet distance", high=10_000_000)
    skip_fid: bool = option(False, "skip the Fréchet distances (no classifier needed)")
    classifier: str | None = option(None, "classifier run for the features (default: one trained once per dataset, "
                                          "cached under $GENLAB_CACHE or ~/.cache/genlab)")
    probe_train: int | None = option(None, "training images for the linear probes (default all)", high=10**9)
    seed: int = option(0, "seeds posterior and model samples", low=0, high=2**63 - 1)
    max_decodes: int = option(MAX_DECODES, "codes decoded per pass of the NLL estimate: bounds memory",
                              high=10**9)

    def __post_init__(self) -> None:
        checks = {"k": (self.k, 1), "--test-images": (self.test_images, 1), "--nll-images": (self.nll_images, 1),
                  "--fid-samples": (self.fid_samples, 2), "--probe-train": (self.probe_train, 2),
                  "--max-decodes": (self.max_decodes, 1)}
        for name, (value, least) in checks.items():
            if value is not None and value < least:
                raise ConfigError(f"{name} must be >= {least}, got {value}"
                                  + ("; k = 1 gives the ELBO, 1000 is the usual choice" if name == "k" else ""))
