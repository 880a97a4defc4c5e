"""DCGAN (Radford, Metz & Chintala 2016): transposed-conv generator, conv discriminator, two-player losses."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.config import Config, option, require
from genlab.errors import ConfigError
from genlab.nn import ConvTranspose2d, module_device, standard_normal


def upsampling_plan(size: int) -> list[int]:
    """Side lengths the generator walks from its 4x4 start: [4, 8, ..., size] or [4, 7, 14, ..., size].

    Sizes 4 * 2^n double from 4; sizes 7 * 2^n (28 for Fashion-MNIST) first go 4 -> 7 with a 3x3 kernel.
    """
    for base in (4, 7):
        n = 1
        while base * 2 ** n <= size:
            if base * 2 ** n == size:
                return ([4] if base == 7 else []) + [base * 2 ** i for i in range(n + 1)]
            n += 1
    raise ConfigError(f"the DCGAN builds square images of side 4*2^n or 7*2^n (e.g. 28, 32, 64), not {size}; "
                      f"use --image-size 32 or 64")


@dataclass(frozen=True)
class DCGANConfig(Config):
    image_shape: tuple[int, int, int] = option((1, 28, 28), "(channels, height, width), set from the data",
                                             low=1, high=2048)
    latent_dim: int = option(100, "size of the noise vector z ~ N(0, I)", low=1, high=4096)
    dim: int = option(64, "width: the generator's last hidden layer and the discriminator's first have DIM "
                          "channels, doubling per layer towards 4x4 (8*DIM at 64x64)", low=1, high=1024)
    instance_noise: float = option(0.0, "standard deviation of Gaussian noise added to every image the "
                                        "discriminator sees, real and fake, in its [-1, 1] units (instance noise, "
                                        "Sonderby et al. 2017): it hides pixel-level differences D could otherwise "
                                        "win on at once; 0 is Radford et al.'s DCGAN", low=0.0, high=10.0)
    spectral_norm: bool = option(False, "spectrally normalise the discriminator's convolutions (Miyato et al. 2018) "
                                        "in place of its batch norm: each layer is then 1-Lipschitz, so D cannot "
                                        "win at once and starve G of gradient; off is Radford et al.'s DCGAN")

    def __post_init__(self) -> None:
        _, height, width = self.image_shape
        require(height == width, f"the DCGAN builds square images; got {height}x{width}: use --image-size")
        upsampling_plan(height)  # raises for sizes it cannot build

    def widths(self) -> list[int]:
        """Channels at each side length of `upsampling_plan`, from 4x4 up; the last is the image's."""
        n_up = len(upsampling_plan(self.image_shape[1])) - 1
        return [self.dim * 2 ** (n_up - 1 - i) for i in range(n_up)] + [self.image_shape[0]]


def up_layer(n_in: int, n_out: int, size_in: int, size_out: int) -> ConvTranspose2d:
    """Transposed conv from size_in to size_out: 4x4 stride 2 pad 1 doubles; 3x3 stride 2 pad 1 makes 4 -> 7."""
    kernel = 4 if size_out == 2 * size_in else 3
    return ConvTranspose2d(n_in, n_out, kernel, stride=2, padding=1, bias=False)


def down_layer(n_in: int, n_out: int, size_in: int, size_out: int) -> nn.Conv2d:
    """The mirror of `up_layer`: 4x4 stride 2 pad 1 halves; 3x3 stride 2 pad 1 makes 7 -> 4."""
    kernel = 4 if size_in == 2 * size_out else 3
    return nn.Conv2d(n_in, n_out, kernel, stride=2, padding=1, bias=False)


class Generator(nn.Sequential):
    """z (N, latent_dim) -> 4x4 map of widths[0] channels -> BN-ReLU transposed convs -> tanh image in [-1, 1]."""

    def __init__(self, config: DCGANConfig) -> None:
        sizes, widths = upsampling_plan(config.image_shape[1]), config.widths()
        layers: list[nn.Module] = [nn.Unflatten(1, (config.latent_dim, 1, 1)),
                                   nn.ConvTranspose2d(config.latent_dim, widths[0], 4, bias=False),  # 1x1 -> 4x4
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for i in range(len(sizes) - 1):
            last = i == len(sizes) - 2
            layers.append(up_layer(widths[i], widths[i + 1], sizes[i], sizes[i + 1]))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(widths[i + 1]), nn.ReLU(True)]
        super().__init__(*layers)


class Discriminator(nn.Sequential):
    """Image in [-1, 1] -> leaky-ReLU strided convs (batch norm on all but the first; none with spectral_norm, whose
    parametrisations DCGAN adds) -> one logit per image."""

    def __init__(self, config: DCGANConfig) -> None:
        sizes, widths = upsampling_plan(config.image_shape[1])[::-1], config.widths()[::-1]
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(down_layer(widths[i], widths[i + 1], sizes[i], sizes[i + 1]))
            normed = i > 0 and not config.spectral_norm
            layers += ([nn.BatchNorm2d(widths[i + 1])] if normed else []) + [nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(widths[-1], 1, 4), nn.Flatten(0)]  # 4x4 -> 1x1: (N,) logits
        super().__init__(*layers)


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.: conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGAN(nn.Module):
    """A generator G and a discriminator D trained against each other; images enter in [0, 1]."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        self.apply(dcgan_init)
        if config.spectral_norm:  # after the init: the normalised weight is computed from the initialised one
            for layer in self.discriminator:
                if isinstance(layer, nn.Conv2d):
                    torch.nn.utils.parametrizations.spectral_norm(layer)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), (n, latent_dim), on the model's device."""
        return standard_normal(n, self.latent_dim, module_device(self), generator)

    def generate(self, n: int) -> Tensor:
        """G(z) for fresh noise: (n, C, H, W) in [-1, 1], differentiable in G's weights."""
        return self.generator(self.noise(n))

    def decode(self, z: Tensor) -> Tensor:
        """z (N, latent_dim) -> G(z) (N, C, H, W), the generator's tanh output in [-1, 1]; `to_image` makes pixels."""
        return self.generator(z)

    def to_image(self, decoded: Tensor) -> Tensor:
        """G's output in [-1, 1] -> image in [0, 1]."""
        return (decoded + 1) / 2

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n images (n, C, H, W) in [0, 1] (no graph: training goes through decode)."""
        return self.to_image(self.decode(self.noise(n, generator)))

    def with_noise(self, images: Tensor) -> Tensor:
        """Images in [-1, 1] as D sees them: with N(0, instance_noise^2) added to each pixel (unchanged at 0)."""
        noise = self.config.instance_noise
        return images + noise * torch.randn_like(images) if noise else images

    def d_loss(self, x: Tensor, fake: Tensor | None = None) -> dict[str, Tensor]:
        """-[log D(x) + log(1 - D(G(z)))], batch means; fake (in [-1, 1]) is drawn when not given. Detaches G."""
        fake = self.generate(x.shape[0]) if fake is None else fake
        real_logits = self.discriminator(self.with_noise(x * 2 - 1))
        fake_logits = self.discriminator(self.with_noise(fake.detach()))
        loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        return {"loss": loss, "d_real": torch.sigmoid(real_logits).mean(),
                "d_fake": torch.sigmoid(fake_logits).mean()}

    def g_loss(self, n: int, fake: Tensor | None = None) -> dict[str, Tensor]:
        """-log D(G(z)), the non-saturating generator loss, batch mean; fake is drawn when not given."""
        fake = self.generate(n) if fake is None else fake
        logits = self.discriminator(self.with_noise(fake))
        return {"loss": F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))}

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """Both players' losses on x and one fake batch (evaluation), as one `loss_record`."""
        fake = self.generate(x.shape[0])
        return self.loss_record(self.d_loss(x, fake), self.g_loss(x.shape[0], fake))

    @staticmethod
    def loss_record(d: dict[str, Tensor], g: dict[str, Tensor]) -> dict[str, Tensor]:
        """One record for both players: loss = d_loss + g_loss (a summary, not an objective), and D's mean outputs."""
        return {"loss": d["loss"] + g["loss"], "d_loss": d["loss"], "g_loss": g["loss"],
                "d_real": d["d_real"], "d_fake": d["d_fake"]}
