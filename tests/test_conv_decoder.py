"""genlab.nn.ConvDecoder: with NHWC weights its last linear layer writes NHWC, so that the transposed convolutions
read their input without a transpose first; the outputs and gradients are those of its layers as written."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from genlab import nn as gnn
from genlab.models.registry import create_model


def stack_inputs(decoder: gnn.ConvDecoder) -> list[torch.Tensor]:
    """Records every input the decoder's DeconvStack receives (a pre-hook on the stack, not on the layers)."""
    seen: list[torch.Tensor] = []
    decoder[-1].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    return seen


def as_written(decoder: gnn.ConvDecoder) -> gnn.ConvDecoder:
    """A copy that runs its layers one after the other, as nn.Sequential does, whatever the weights' layout."""
    plain = copy.deepcopy(decoder)
    plain.writes_nhwc = lambda: False
    return plain


def output_and_gradients(decoder: nn.Module, z: torch.Tensor) -> list[torch.Tensor]:
    z = z.detach().requires_grad_()
    decoder.zero_grad()
    out = decoder(z)
    (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
    return [out.detach(), z.grad, *(p.grad.clone() for p in decoder.parameters())]


@pytest.mark.parametrize("name, options", [("conv-vae", {}), ("conv-vae", {"conv_dense": (32,)}),
                                           ("conv-vae", {"conv_activation": "relu"}),
                                           ("beta-vae-conv64", {"image_shape": (1, 64, 64)})])
def test_nhwc_weights_give_the_stack_an_nhwc_input_and_the_same_numbers(name, options) -> None:
    torch.manual_seed(0)
    model = create_model(name, **options)
    decoder = model.to(memory_format=torch.channels_last).decoder
    assert isinstance(decoder, gnn.ConvDecoder)
    layers = as_written(decoder)
    seen, seen_layers = stack_inputs(decoder), stack_inputs(layers)
    z = torch.randn(5, model.latent_dim)
    got, expected = output_and_gradients(decoder, z), output_and_gradients(layers, z)
    with torch.no_grad():
        got_eval, expected_eval = decoder(z), layers(z)
    assert len(seen) == len(seen_layers) == 2
    assert all(gnn.is_nhwc(x) for x in seen) and all(x.is_contiguous() for x in seen_layers)
    assert len(got) == len(expected) == 2 + len(list(decoder.parameters()))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_eval, expected_eval, rtol=1e-5, atol=1e-5)
    plain = nn.Sequential(*copy.deepcopy(list(decoder)))  # the run files' names are the Sequential's
    assert list(decoder.state_dict()) == list(plain.state_dict())


def test_nchw_weights_and_hooked_layers_run_the_layers_as_written() -> None:
    torch.manual_seed(0)
    model = create_model("conv-vae")
    seen = stack_inputs(model.decoder)
    z = torch.randn(3, model.latent_dim)
    with torch.no_grad():
        model.decoder(z)  # NCHW weights: the plain Sequential
        model.to(memory_format=torch.channels_last)
        hooked = []
        handle = model.decoder[0].register_forward_hook(lambda module, args, out: hooked.append(out.shape))
        model.decoder(z)  # a hook on the linear layer sees the layer's own output: the layers as written
        handle.remove()
        model.decoder(z)
    assert hooked == [torch.Size([3, 32 * 7 * 7])]
    assert [gnn.is_nhwc(x) for x in seen] == [False, False, True]


def test_a_leaky_relu_with_a_negative_slope_is_not_run_in_place() -> None:
    """In place, autograd refuses a leaky ReLU whose slope is negative; out of place it trains."""
    torch.manual_seed(0)
    model = create_model("conv-vae")
    model.decoder[1] = nn.LeakyReLU(-0.1)
    decoder = model.to(memory_format=torch.channels_last).decoder
    z = torch.randn(4, model.latent_dim)
    for a, b in zip(output_and_gradients(decoder, z), output_and_gradients(as_written(decoder), z)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
