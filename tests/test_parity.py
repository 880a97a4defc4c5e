"""Same weights and batch give the same loss and gradients as a plain reference implementation."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.registry import create_model


class TutorialVAE(nn.Module):
    """The standard tutorial VAE, written the plain way: sigmoid output and binary_cross_entropy."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def loss_sum(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = torch.sigmoid(self.fc4(F.relu(self.fc3(z))))
        bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld


def test_vae_loss_and_gradients_match_the_tutorial_model() -> None:
    model, reference = create_model("vae"), TutorialVAE()
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
            theirs.copy_(ours)
    x = torch.rand(32, 1, 28, 28)
    torch.manual_seed(7)
    ours = model.loss(x)["loss"]
    torch.manual_seed(7)  # the same eps for the reparameterization
    theirs = reference.loss_sum(x) / x.shape[0]
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-4)
    ours.backward()
    theirs.backward()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)


def test_autoencoder_loss_is_squared_error_per_image() -> None:
    model = create_model("ae")
    x = torch.rand(16, 1, 28, 28)
    x_hat = torch.sigmoid(model.decode(model.encode(x)))
    expected = F.mse_loss(x_hat, x, reduction="sum") / x.shape[0]
    torch.testing.assert_close(model.loss(x)["loss"], expected)
