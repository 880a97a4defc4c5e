"""A genlab extension: an MLP VAE whose encoder sees part of the pixels, and a dataset of stripes."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import genlab
from genlab.models.vae import VAE, VAEConfig


@dataclass(frozen=True)
class DropoutVAEConfig(VAEConfig):
    input_dropout: float = genlab.option(0.2, "fraction of pixels hidden from the encoder while training",
                                         low=0.0, high=0.9)


class DropoutVAE(VAE):
    """The MLP VAE whose encoder sees a random part of the pixels while training (the decoder rebuilds all)."""

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            kept = 1 - self.config.input_dropout
            x = F.dropout(x, self.config.input_dropout) * kept  # dropped pixels become 0, kept ones unscaled
        return super().posterior(x)


def stripes(data_dir: str | None) -> genlab.Dataset:
    """Horizontal (class 0) and vertical (class 1) stripes of random width and phase, 28x28."""
    generator = torch.Generator().manual_seed(0)
    n = 1200
    period = torch.randint(4, 10, (n, 1, 1), generator=generator)
    phase = torch.randint(0, 10, (n, 1, 1), generator=generator)
    labels = torch.randint(0, 2, (n,), generator=generator)
    rows = torch.arange(28).view(1, 28, 1).expand(n, 28, 28)
    cols = torch.arange(28).view(1, 1, 28).expand(n, 28, 28)
    along = torch.where(labels.view(n, 1, 1) == 0, rows, cols)
    images = (((along + phase) // (period // 2)) % 2 * 255).to(torch.uint8).unsqueeze(1)
    return genlab.Dataset("stripes", images[:1000], labels[:1000], images[1000:], labels[1000:],
                          ("horizontal", "vertical"))


# the entry point `genlab.models` names this: class, config class, registry defaults, one-line description
DROPOUT_VAE = genlab.ModelSpec(DropoutVAE, DropoutVAEConfig, {},
                               "MLP VAE whose encoder sees 80% of the pixels while training")
