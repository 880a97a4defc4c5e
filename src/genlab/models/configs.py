"""The configs of genlab's model families, one frozen dataclass per family, without torch: the command line
builds every model flag from them before any network (and torch) is imported. Each family's module imports its
config from here."""
from __future__ import annotations

from dataclasses import dataclass

from genlab.errors import ConfigError
from genlab.models.config import Config, option, require
from genlab.shapes import check_image_shape


@dataclass(frozen=True)
class AEConfig(Config):
    arch: str = option("mlp", "encoder/decoder family", ("mlp", "conv"))
    image_shape: tuple[int, int, int] = option((1, 28, 28), "(channels, height, width), set from the data",
                                             low=1, high=2048)
    latent_dim: int = option(3, "size of the code", low=1, high=4096)
    hidden: tuple[int, ...] = option((128, 64, 12), "MLP hidden sizes, encoder order; the decoder mirrors them",
                                     low=1, high=16384, when={"arch": ("mlp",)})
    conv_channels: tuple[int, ...] = option((16, 32), "conv encoder channels; the decoder mirrors them",
                                            low=1, high=4096, when={"arch": ("conv",)})
    kernel_size: int = option(5, "conv kernel size (odd)", low=1, high=15, when={"arch": ("conv",)})
    reconstruction: str = option("mse", "squared error on sigmoid outputs, or Bernoulli cross-entropy on logits",
                                 ("mse", "bce"))
    code_activation: str = option("none", "squashing of the code: none (linear) or sigmoid", ("none", "sigmoid"))
    corruption: str = option("none", "denoising: corrupt the input the encoder sees, rebuild the clean image; "
                             "additive Gaussian noise or masking noise", ("none", "gaussian", "mask"))
    corruption_level: float = option(0.0, "std of the Gaussian noise, or the fraction of pixels masked to 0",
                                     low=0.0, high=100.0)
    contractive: float = option(0.0, "contractive AE: weight lambda of ||dh/dx||_F^2 (0 turns it off)",
                                 low=0.0, high=1e6)

    def __post_init__(self) -> None:
        require(self.arch in ("mlp", "conv"), f"arch must be 'mlp' or 'conv', not {self.arch!r}")
        require(self.reconstruction in ("mse", "bce"),
                f"reconstruction must be 'mse' or 'bce', not {self.reconstruction!r}")
        require(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        require(self.kernel_size % 2 == 1, f"kernel_size must be odd, got {self.kernel_size}")
        require(self.code_activation in ("none", "sigmoid"),
                f"code_activation must be none or sigmoid, not {self.code_activation!r}")
        require(self.corruption in ("none", "gaussian", "mask"),
                f"corruption must be none, gaussian or mask, not {self.corruption!r}")
        require(self.corruption_level >= 0 and (self.corruption != "mask" or self.corruption_level < 1),
                f"corruption_level must be >= 0 (and < 1 for masking), got {self.corruption_level}")
        require(self.contractive >= 0, f"contractive must be >= 0, got {self.contractive}")
        check_image_shape(self.arch, self.image_shape, len(self.conv_channels))


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
    kernel_size: int = option(5, "conv kernel size (odd)", low=1, high=15, when={"arch": ("conv",)})
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
                               "pads nothing and the decoder's kernels are sized to rebuild the image",
                               ("same", "valid"), when={"arch": ("conv",)})
    prior: str = option("standard", "p(z): standard normal, or the VampPrior (Tomczak & Welling 2018), a mixture "
                                    "of the posteriors at learned pseudo-inputs", ("standard", "vamp"))
    pseudo_inputs: int = option(500, "VampPrior components K (learned pseudo-inputs)", low=1, high=100_000,
                                when={"prior": ("vamp",)})
    k: int = option(1, "importance samples per image in the objective: 1 is the ELBO, > 1 the IWAE bound",
                    low=1, high=10000)

    def __post_init__(self) -> None:
        require(self.arch in ("mlp", "conv"), f"arch must be 'mlp' or 'conv', not {self.arch!r}")
        require(self.likelihood in ("bernoulli", "gaussian"),
                f"likelihood must be 'bernoulli' or 'gaussian', not {self.likelihood!r}")
        require(self.decoder_variance in ("fixed", "global", "per-pixel"),
                f"decoder_variance must be fixed, global or per-pixel, not {self.decoder_variance!r}")
        require(self.decoder_variance == "fixed" or self.likelihood == "gaussian",
                "a learned decoder_variance needs --likelihood gaussian (a Bernoulli decoder has no variance)")
        require(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        require(self.beta >= 0, f"beta must be >= 0, got {self.beta}")
        require(self.k >= 1, f"k (importance samples) must be >= 1, got {self.k}")
        require(self.gaussian_std > 0, f"gaussian_std must be > 0, got {self.gaussian_std}")
        require(self.conv_padding in ("same", "valid"), f"conv_padding must be same or valid, not {self.conv_padding!r}")
        require(self.conv_padding == "valid" or self.kernel_size % 2 == 1,
                f"kernel_size must be odd with 'same' padding, got {self.kernel_size}")
        require(not (self.gated and self.batch_norm), "gated layers take no batch norm: drop --batch-norm or --gated")
        require(self.prior in ("standard", "vamp"), f"prior must be standard or vamp, not {self.prior!r}")
        require(self.prior == "standard" or not self.batch_norm,
                "the VampPrior encodes its pseudo-inputs through the encoder: it takes no --batch-norm")
        require(not self.gated or self.arch == "mlp", "--gated applies to MLP hidden layers; conv models have none")
        check_image_shape(self.arch, self.image_shape, len(self.conv_channels), self.kernel_size, self.conv_padding)


@dataclass(frozen=True)
class HVAEConfig(Config):
    image_shape: tuple[int, int, int] = option((1, 28, 28), "(channels, height, width), set from the data",
                                             low=1, high=2048)
    latent_dim: int = option(40, "size of each of z1 and z2", low=1, high=4096)
    hidden: int = option(300, "gated units per hidden layer", low=1, high=16384)
    prior: str = option("standard", "p(z2): standard normal or the VampPrior", ("standard", "vamp"))
    pseudo_inputs: int = option(500, "VampPrior components K (learned pseudo-inputs)", low=1, high=100_000)
    beta: float = option(1.0, "KL weight: 1 is the true ELBO", low=0.0, high=1e6)

    def __post_init__(self) -> None:
        require(self.prior in ("standard", "vamp"), f"prior must be standard or vamp, not {self.prior!r}")
        check_image_shape("mlp", self.image_shape, 0)


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

    def __post_init__(self) -> None:
        require(len(self.image_shape) == 3, f"image_shape must be (channels, height, width), got {self.image_shape}")
        _, height, width = self.image_shape
        require(height == width, f"the DCGAN builds square images; got {height}x{width}: use --image-size")
        require(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        require(self.dim >= 1, f"dim must be >= 1, got {self.dim}")
        upsampling_plan(height)  # raises for sizes it cannot build

    def widths(self) -> list[int]:
        """Channels at each side length of `upsampling_plan`, from 4x4 up; the last is the image's."""
        n_up = len(upsampling_plan(self.image_shape[1])) - 1
        return [self.dim * 2 ** (n_up - 1 - i) for i in range(n_up)] + [self.image_shape[0]]


@dataclass(frozen=True)
class ClassifierConfig(Config):
    image_shape: tuple[int, int, int] = option((1, 28, 28), "(channels, height, width), set from the data",
                                             low=1, high=2048)
    n_classes: int = option(10, "number of classes, set from the data", low=2, high=100000)
    conv_channels: tuple[int, ...] = option((32, 64), "channels of the conv blocks (3x3 conv, batch norm, ReLU, "
                                                      "2x2 max pool)", low=1, high=4096)
    feature_dim: int = option(128, "size of the penultimate layer: the features metrics use",
                               low=1, high=16384)
    dropout: float = option(0.3, "dropout before the last layer, while training", low=0.0, high=0.99)

    def __post_init__(self) -> None:
        require(len(self.image_shape) == 3, f"image_shape must be (channels, height, width), got {self.image_shape}")
        require(self.n_classes >= 2, f"n_classes must be >= 2, got {self.n_classes}")
        require(len(self.conv_channels) >= 1, "channels needs at least one conv block")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        side = min(self.image_shape[1:]) // 2 ** len(self.conv_channels)
        require(side >= 1, f"{len(self.conv_channels)} pooling blocks shrink {self.image_shape[1]}x{self.image_shape[2]} "
                           f"images to nothing; use fewer --conv-channels or a larger --image-size")
