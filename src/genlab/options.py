"""Option sets of the commands that are not a model's or a training's config, without torch, so that the command
line builds their flags before anything heavy is imported: EvaluationOptions (what `genlab evaluate` measures),
and the limits a command's help states."""
from __future__ import annotations

from dataclasses import dataclass

from genlab.errors import ConfigError
from genlab.models.config import Config, option

MAX_DEFAULT_TRAVERSAL_ROWS = 10  # rows of a traversal when no --dims are given: a 100-d DCGAN would make 100
MAX_DECODES = 4096  # decoder evaluations per pass of the IWAE estimate: bounds memory; see metrics.iwae_nll

# the inversion networks and recipes (genlab.invert_models, genlab.invert)
WEIGHT_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth",
                "googlenet": "googlenet-1378be20.pth"}  # torchvision's names in its download cache
NETWORK_HELP = ("efficientnet-lite0, efficientnet-lite1, efficientnet-lite2, vgg-random, vgg16, vgg19, googlenet, "
                "or a classifier run directory")
DEFAULT_NETWORK = "efficientnet-lite0"
RECIPES = ("robust", "seeds")  # class visualization: the default, and the seeds' pixel-space ascent


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
