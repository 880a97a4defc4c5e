"""Variational autoencoder (Kingma & Welling 2014): MLP or conv, beta-weighted, Bernoulli or Gaussian decoder, IWAE."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genlab import losses
from genlab.config import Config, option, require
from genlab.models.vampprior import VampPrior
from genlab.nn import decoder, encoder_body, standard_normal
from genlab.sizes import check_image_shape

MIN_DECODER_STD = 0.01  # floor of a learned Gaussian decoder's standard deviation, in pixel units [0, 1]


@dataclass(frozen=True)
class VAEConfig(Config):
    arch: str = option("mlp", "encoder/decoder family", ("mlp", "conv"))
    image_shape: tuple[int, int, int] = option((1, 28, 28), "(channels, height, width), set from the data",
                                             low=1, high=2048)
    latent_dim: int = option(20, "size of z", low=1, high=4096)
    hidden: tuple[int, ...] = option((400,), "MLP hidden sizes, encoder order; the decoder mirrors them",
                                     low=1, high=16384, when={"arch": ("mlp",)})
    conv_channels: tuple[int, ...] = option((16, 32), "conv encoder channels; the decoder mirrors them",
                                            low=1, high=4096, when={"arch": ("conv",)})
    kernel_size: int = option(5, "conv kernel size (odd with 'same' padding, even with 'half')", low=1, high=15,
                              when={"arch": ("conv",)})
    beta: float = option(1.0, "KL weight: 1 is the true ELBO, > 1 a beta-VAE", low=0.0, high=1e6)
    likelihood: str = option("bernoulli", "decoder likelihood: Bernoulli on logits, or Gaussian means",
                             ("bernoulli", "gaussian"))
    gaussian_std: float = option(0.1, "Gaussian decoder standard deviation (the starting value when learned)",
                                 low=1e-6, high=1e3, when={"likelihood": ("gaussian",)})
    decoder_variance: str = option("fixed", "Gaussian decoder variance: fixed at gaussian_std, or learned, "
                                   "one for all pixels or one per pixel", ("fixed", "global", "per-pixel"),
                                   when={"likelihood": ("gaussian",)})
    batch_norm: bool = option(False, "batch norm before each hidden activation of the MLP encoder and decoder",
                              when={"arch": ("mlp",)})
    gated: bool = option(False, "gated MLP hidden layers, h = (W1 x + b1) * sigmoid(W2 x + b2), as in the "
                                "VampPrior paper's MLP models (instead of ReLU)", when={"arch": ("mlp",)})
    conv_padding: str = option("same", "conv padding: 'same' halves H and W per layer (odd kernels); 'valid' "
                               "pads nothing and the decoder's kernels are sized to rebuild the image; 'half' pads "
                               "k/2 - 1 (even kernels, TensorFlow's SAME): H and W halve rounding down, and the "
                               "decoder gives odd sizes their last row back", ("same", "valid", "half"),
                               when={"arch": ("conv",)})
    conv_dense: tuple[int, ...] = option((), "fully connected layers between the conv stack and the code, "
                                         "encoder order; the decoder mirrors them", low=1, high=16384,
                                         when={"arch": ("conv",)})
    conv_activation: str = option("leaky_relu", "activation after each conv and fully connected hidden layer "
                                  "(leaky ReLU with slope 0.2, or ReLU)", ("leaky_relu", "relu"),
                                  when={"arch": ("conv",)})
    prior: str = option("standard", "p(z): standard normal, or the VampPrior (Tomczak & Welling 2018), a mixture "
                                    "of the posteriors at learned pseudo-inputs", ("standard", "vamp"))
    pseudo_inputs: int = option(500, "VampPrior components K (learned pseudo-inputs)", low=1, high=100_000,
                                when={"prior": ("vamp",)})
    k: int = option(1, "importance samples per image in the objective: 1 is the ELBO, > 1 the IWAE bound",
                    low=1, high=10000)

    def __post_init__(self) -> None:
        require(self.decoder_variance == "fixed" or self.likelihood == "gaussian",
                "a learned decoder_variance needs --likelihood gaussian (a Bernoulli decoder has no variance)")
        require(self.conv_padding != "same" or self.kernel_size % 2 == 1,
                f"kernel_size must be odd with 'same' padding, got {self.kernel_size}")
        require(self.conv_padding != "half" or self.kernel_size % 2 == 0,
                f"kernel_size must be even with 'half' padding, got {self.kernel_size}")
        require(not (self.gated and self.batch_norm), "gated layers take no batch norm: drop --batch-norm or --gated")
        require(self.prior == "standard" or not self.batch_norm,
                "the VampPrior encodes its pseudo-inputs through the encoder: it takes no --batch-norm")
        require(not self.gated or self.arch == "mlp", "--gated applies to MLP hidden layers; conv models have none")
        check_image_shape(self.arch, self.image_shape, len(self.conv_channels), self.kernel_size, self.conv_padding)


class VAE(nn.Module):
    """q(z|x) = N(mu(x), diag sigma^2(x)), p(z) = N(0, I) or a VampPrior, p(x|z) Bernoulli (logits) or
    Gaussian (means)."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        shape = (c.arch, c.image_shape, c.hidden, c.conv_channels, c.kernel_size, c.batch_norm, c.conv_padding,
                 c.gated)
        conv_layers = {"dense": c.conv_dense, "activation": c.conv_activation}
        self.encoder, features = encoder_body(*shape, **conv_layers)
        self.mu_head = nn.Linear(features, c.latent_dim)
        self.log_var_head = nn.Linear(features, c.latent_dim)
        self.decoder = decoder(shape[0], c.latent_dim, *shape[1:], **conv_layers)
        if c.decoder_variance != "fixed":
            # log sigma^2 of p(x|z), shared by all pixels or one per pixel, starting at gaussian_std
            size = (1, 1, 1) if c.decoder_variance == "global" else tuple(c.image_shape)
            self.decoder_log_var = nn.Parameter(torch.full(size, 2 * math.log(c.gaussian_std)))
        if c.prior == "vamp":
            self.vamp = VampPrior(c.pseudo_inputs, tuple(c.image_shape))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x) parameters: mu and log sigma^2, each (N, latent_dim)."""
        features = self.encoder(x)
        return self.mu_head(features), self.log_var_head(features)

    def encode(self, x: Tensor) -> Tensor:
        """Posterior mean, (N, latent_dim): the code used for features and exploration."""
        return self.posterior(x)[0]

    @staticmethod
    def reparameterize(mu: Tensor, log_var: Tensor) -> Tensor:
        # z = mu + sigma * eps, eps ~ N(0, I): the sample stays differentiable in mu and sigma
        return mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)

    def decode(self, z: Tensor) -> Tensor:
        """(N, latent_dim) -> (N, C, H, W) logits (Bernoulli) or means (Gaussian)."""
        return self.decoder(z)

    def likelihood_networks(self) -> list[nn.Module]:
        """The network of p(x|z)'s parameters, which `genlab evaluate --precision bf16` runs in bfloat16."""
        return [self.decoder]

    def to_image(self, decoded: Tensor) -> Tensor:
        """Decoder output -> image in [0, 1]: sigmoid of logits, or clamped means."""
        if self.config.likelihood == "bernoulli":
            return torch.sigmoid(decoded)
        return decoded.clamp(0, 1)

    def decoder_log_variance(self) -> Tensor | float:
        """log sigma^2 of the Gaussian decoder: the fixed value, or the learned one floored at MIN_DECODER_STD."""
        if self.config.decoder_variance == "fixed":
            return 2 * math.log(self.config.gaussian_std)
        # without a floor the variance of always-black background pixels collapses and log p(x|z) diverges
        return self.decoder_log_var.clamp(min=2 * math.log(MIN_DECODER_STD))

    def log_prior(self, z: Tensor) -> Tensor:
        """log p(z) for z (..., latent_dim): shape z.shape[:-1], nats."""
        if self.config.prior == "vamp":
            return self.vamp.log_prob(z, self.posterior)
        return losses.log_std_normal(z)

    def kl(self, mu: Tensor, log_var: Tensor, z: Tensor) -> Tensor:
        """KL(q(z|x) || p(z)), (N,) nats: closed form for N(0, I); for the VampPrior, which has none, the
        one-sample estimate log q(z|x) - log p(z) at the drawn z."""
        if self.config.prior == "vamp":
            return losses.log_normal_diag(z, mu, log_var) - self.log_prior(z)
        return losses.kl_std_normal(mu, log_var)

    def log_px_z(self, decoded: Tensor, x: Tensor) -> Tensor:
        """log p(x|z), (N,) nats summed over pixels."""
        if self.config.likelihood == "bernoulli":
            return losses.bernoulli_log_likelihood(decoded, x)
        return losses.gaussian_log_likelihood(decoded, x, self.decoder_log_variance())

    def loss(self, x: Tensor, kl_weight: Tensor | float | None = None) -> dict[str, Tensor]:
        """-ELBO with KL weight beta (or, with k > 1, the negative IWAE bound), batch mean: nats per image.

        kl_weight (KL warm-up) scales beta further; with it, "bound" is the true beta = 1 negative bound.
        """
        weight = self.config.beta if kl_weight is None else self.config.beta * kl_weight
        if self.config.k > 1:
            return self.iwae_loss(x, self.config.k, weight, report_bound=kl_weight is not None)
        _, _, _, rec, kl = self.terms(x)
        parts = {"loss": (rec + weight * kl).mean(), "rec": rec.mean(), "kl": kl.mean()}
        if kl_weight is not None:
            parts["bound"] = (rec + kl).mean()
        return parts

    def iwae_loss(self, x: Tensor, k: int, weight: Tensor | float | None = None,
                  report_bound: bool = False) -> dict[str, Tensor]:
        """-log (1/k) sum_i p(x|z_i) p(z_i)^b / q(z_i|x)^b (Burda et al. 2016), b = weight (beta by default);
        rec and kl averaged over z_i."""
        weight = self.config.beta if weight is None else weight
        log_px_z, log_pz, log_qz = self.log_weight_terms(x, k)
        bound = losses.iwae_bound(log_px_z, weight * log_pz, weight * log_qz)
        parts = {"loss": -bound.mean(), "rec": -log_px_z.mean(), "kl": (log_qz - log_pz).mean()}
        if report_bound:
            parts["bound"] = -losses.iwae_bound(log_px_z, log_pz, log_qz).mean()
        return parts

    def log_weight_terms(self, x: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """log p(x|z_i), log p(z_i), log q(z_i|x) for k reparameterized samples z_i per image: each (k, N)."""
        mu, log_var = self.posterior(x)
        z = mu + torch.exp(0.5 * log_var) * torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype)
        decoded = self.decode(z.flatten(0, 1))
        if self.config.likelihood == "bernoulli":  # x broadcast over the k samples, not copied k times
            log_px_z = losses.bernoulli_log_likelihood_samples(decoded.view(k, *x.shape), x)
        else:
            log_px_z = self.log_px_z(decoded, x.expand(k, *x.shape).flatten(0, 1)).view(k, -1)
        return log_px_z, self.log_prior(z), losses.log_normal_diag(z, mu, log_var)

    def reconstruct(self, x: Tensor) -> Tensor:
        """Decode the posterior mean: (N, C, H, W) in [0, 1]."""
        return self.to_image(self.decode(self.encode(x)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n images from the prior, (n, C, H, W) in [0, 1] (decoder means, not pixel samples)."""
        if self.config.prior == "vamp":
            return self.to_image(self.decode(self.vamp.sample(n, self.posterior, generator)))
        return self.to_image(self.decode(standard_normal(n, self.latent_dim, self.mu_head.weight.device, generator)))

    def terms(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """One posterior sample per image: mu, log_var and z, each (N, latent_dim); -log p(x|z) and
        KL(q(z|x) || p(z)), each (N,) nats."""
        mu, log_var = self.posterior(x)
        z = self.reparameterize(mu, log_var)
        return mu, log_var, z, -self.log_px_z(self.decode(z), x), self.kl(mu, log_var, z)

    def elbo_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """-log p(x|z) at one posterior sample and KL(q(z|x) || p(z)): each (N,) nats; their sum is -ELBO."""
        _, _, _, rec, kl = self.terms(x)
        return rec, kl

    def elbo(self, x: Tensor) -> Tensor:
        """One-sample ELBO (beta = 1), (N,) nats."""
        rec, kl = self.elbo_terms(x)
        return -(rec + kl)

    def log_likelihood(self, x: Tensor, k: int = 100) -> Tensor:
        """Importance-weighted estimate of log p(x) with k posterior samples, (N,) nats."""
        return losses.iwae_bound(*self.log_weight_terms(x, k))
