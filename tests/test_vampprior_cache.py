"""The VampPrior's no-gradient cache of its components follows every change of the weights: the trainer's own
fused Adam, a write through `.data`, a buffer, a change of mode."""
from __future__ import annotations

import pytest
import torch

from genlab.models.registry import create_model, make_config
from genlab.models.vae import VAE
from genlab.models.vampprior import mixture_log_prob
from genlab.training.steps import make_optimizers

Z = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))


def vamp_vae(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("vamp-vae", pseudo_inputs=4, hidden=(16,), latent_dim=3, **overrides).eval()


def cached(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.log_prior(Z)


def fresh(model: torch.nn.Module) -> torch.Tensor:
    """The mixture from the posterior evaluated now, no cache involved."""
    with torch.no_grad():
        return mixture_log_prob(Z, *model.posterior(model.vamp.pseudo_inputs()))


def test_a_step_of_the_trainers_fused_adam_is_seen() -> None:
    model = vamp_vae()
    before = cached(model)
    optimizer = make_optimizers(model, lr=0.05)["model"]
    assert optimizer.defaults["fused"]  # the optimizer genlab trains with
    model.train()
    model.loss(torch.rand(4, 1, 28, 28))["loss"].backward()
    optimizer.step()
    model.eval()
    after = cached(model)
    assert not torch.allclose(after, before) and torch.equal(after, fresh(model))


@pytest.mark.parametrize("which", ["encoder", "pseudo_inputs"])
def test_a_write_through_data_is_seen(which) -> None:
    model = vamp_vae()
    before = cached(model)
    parameter = model.vamp.pseudo_raw if which == "pseudo_inputs" else next(model.encoder.parameters())
    parameter.data.add_(0.25)  # a separate version counter: the parameter's own is not bumped
    after = cached(model)
    assert not torch.allclose(after, before) and torch.equal(after, fresh(model))


class ShiftedVampVAE(VAE):
    """A VampPrior VAE whose posterior reads a buffer, and draws noise while training (as dropout would)."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.register_buffer("shift", torch.zeros(()))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x + self.shift
        return super().posterior(x + 0.1 * torch.randn_like(x) if self.training else x)


def shifted_vamp_vae() -> ShiftedVampVAE:
    torch.manual_seed(0)
    return ShiftedVampVAE(make_config("vamp-vae", pseudo_inputs=4, hidden=(16,), latent_dim=3)).eval()


def test_a_change_of_a_buffer_is_seen() -> None:
    model = shifted_vamp_vae()
    before = cached(model)
    model.shift.fill_(0.5)
    after = cached(model)
    assert not torch.allclose(after, before) and torch.equal(after, fresh(model))


def test_in_training_mode_the_posterior_is_evaluated_every_time() -> None:
    model = shifted_vamp_vae()
    in_eval = cached(model)
    model.train()
    torch.manual_seed(1)
    first = cached(model)
    torch.manual_seed(1)
    assert torch.equal(first, fresh(model)) and not torch.allclose(first, in_eval)
    assert not torch.allclose(cached(model), first)  # new noise, new components


def test_unchanged_weights_encode_the_pseudo_inputs_once() -> None:
    model = vamp_vae()
    encodes = []
    model.encoder.register_forward_hook(lambda module, inputs, output: encodes.append(inputs[0].shape[0]))
    first = cached(model)
    assert all(torch.equal(cached(model), first) for _ in range(3))
    assert encodes == [4]
