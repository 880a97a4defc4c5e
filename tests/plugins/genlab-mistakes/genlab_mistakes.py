"""A genlab plugin package that makes every mistake tests/test_plugin_mistakes.py answers, one per entry point.

`tiny-ae` and `dots` are correct: the package's good parts must keep working beside its broken ones.
"""
from dataclasses import dataclass

import torch
from torch import nn

import genlab


@dataclass(frozen=True)
class TinyAEConfig(genlab.Config):
    image_shape: tuple[int, int, int] = genlab.option((1, 28, 28), "set from the data", low=1, high=2048)
    latent_dim: int = genlab.option(2, "size of the code", low=1, high=64)


class Coder(nn.Module):
    """Encoder and decoder of a tiny autoencoder: everything but to_image."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config, self.latent_dim = config, config.latent_dim
        pixels = config.image_shape[0] * config.image_shape[1] * config.image_shape[2]
        self.encoder = nn.Linear(pixels, config.latent_dim)
        self.decoder = nn.Sequential(nn.Linear(config.latent_dim, pixels), nn.Unflatten(1, config.image_shape))

    def encode(self, x):
        return self.encoder(x.flatten(1))

    def decode(self, z):
        return self.decoder(z)

    def reconstruct(self, x):
        return torch.sigmoid(self.decode(self.encode(x)))

    def loss(self, x):
        rec = (self.reconstruct(x) - x).square().flatten(1).sum(1).mean()
        return {"loss": rec, "rec": rec}


class TinyAE(Coder):
    def to_image(self, decoded):
        return torch.sigmoid(decoded)


class NoSampleVAE(TinyAE):
    """A Gaussian-code autoencoder with a posterior, an ELBO and a likelihood bound, but no sample()."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.log_var = nn.Parameter(torch.zeros(config.latent_dim))

    def posterior(self, x):
        mu = self.encode(x)
        return mu, self.log_var.expand_as(mu)

    def elbo(self, x):
        mu, log_var = self.posterior(x)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        log_px = -nn.functional.binary_cross_entropy_with_logits(self.decode(z), x, reduction="none").flatten(1).sum(1)
        return log_px - 0.5 * (mu.square() + log_var.exp() - 1 - log_var).sum(1)

    def log_likelihood(self, x, k=100):
        return self.elbo(x)

    def loss(self, x):
        bound = self.elbo(x).mean()
        return {"loss": -bound, "bound": bound}


@dataclass(frozen=True)
class NoDefaultConfig(genlab.Config):
    latent_dim: int  # the mistake: no default, so the config cannot be built without it
    image_shape: tuple[int, int, int] = genlab.option((1, 28, 28), "set from the data", low=1, high=2048)


@dataclass(frozen=True)
class ValueRuleConfig(TinyAEConfig):
    def __post_init__(self) -> None:  # the mistake: a ValueError, not genlab's ConfigError (or require)
        if self.latent_dim > 4:
            raise ValueError("latent_dim above 4 is not supported")


@dataclass(frozen=True)
class EpochsConfig(TinyAEConfig):
    epochs: int = genlab.option(3, "a model field named like a training option")  # the mistake: --epochs twice


def spec(cls, config_cls, description, defaults=None):
    return genlab.ModelSpec(cls, config_cls, defaults or {}, description)


TINY_AE = spec(TinyAE, TinyAEConfig, "a correct tiny autoencoder, beside the broken ones")
NO_DEFAULT = spec(TinyAE, NoDefaultConfig, "a config field without a default")
VALUE_RULE = spec(TinyAE, ValueRuleConfig, "a config rule that raises ValueError above latent_dim 4")
BAD_DEFAULTS = spec(TinyAE, ValueRuleConfig, "registry defaults its own rule refuses", {"latent_dim": 8})
NO_TO_IMAGE = spec(Coder, TinyAEConfig, "an autoencoder without to_image")
NO_SAMPLE = spec(NoSampleVAE, TinyAEConfig, "a VAE without sample")
EPOCHS_FIELD = spec(TinyAE, EpochsConfig, "a config field whose flag is a training option's")
NOT_A_SPEC = TinyAE  # the mistake: the class, not a ModelSpec


def dots(data_dir):
    """A correct dataset: one bright pixel at a random place, 28x28, the class is its row's half."""
    generator = torch.Generator().manual_seed(0)
    where = torch.randint(0, 28 * 28, (300,), generator=generator)
    images = torch.zeros(300, 28 * 28, dtype=torch.uint8)
    images[torch.arange(300), where] = 255
    labels = (where // 28 >= 14).long()
    return genlab.Dataset("dots", images.view(300, 1, 28, 28)[:200], labels[:200], images.view(300, 1, 28, 28)[200:],
                          labels[200:], ("top", "bottom"))


def missing_file(data_dir):
    """A loader that raises its own exception."""
    return open("/nonexistent/genlab-mistakes/images.bin", "rb")


NOT_CALLABLE = "a string, not a loader"
