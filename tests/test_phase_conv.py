"""genlab.nn.ConvTranspose2d: a decoder's thin last layer as one convolution over the output's four phases, the same
layer as nn.ConvTranspose2d in values, gradients, dtypes and state dict."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab import nn as gnn
from genlab.models.registry import create_model

# (in, out, kernel, padding, output padding, input side): genlab's decoders' last layers and odd corners
CASES = [(16, 1, 5, 2, 1, 14), (32, 1, 4, 0, 0, 13), (32, 3, 4, 1, 0, 32), (64, 1, 4, 1, 0, 14), (8, 2, 4, 1, 1, 7),
         (8, 2, 3, 1, 0, 4), (8, 3, 5, 2, 0, 6), (4, 1, (5, 4), 0, 0, 5)]


def pair(cin, cout, k, p, op) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    fast = gnn.ConvTranspose2d(cin, cout, k, 2, p, output_padding=op)
    plain = nn.ConvTranspose2d(cin, cout, k, 2, p, output_padding=op)
    plain.load_state_dict(fast.state_dict())
    return fast, plain


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("cin, cout, k, p, op, n", CASES)
def test_the_phase_path_is_the_transposed_convolution(cin, cout, k, p, op, n, channels_last) -> None:
    fast, plain = pair(cin, cout, k, p, op)
    x = torch.randn(3, cin, n, n, generator=torch.Generator().manual_seed(1))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = fast(xa), plain(xb)
    assert ya.shape == yb.shape
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
    grad = torch.randn(yb.shape, generator=torch.Generator().manual_seed(2))
    ya.backward(grad)
    yb.backward(grad)
    assert torch.equal(xa.grad, xb.grad)  # the backward pass is PyTorch's own
    assert torch.equal(fast.weight.grad, plain.weight.grad) and torch.equal(fast.bias.grad, plain.bias.grad)


def test_under_bf16_autocast_it_computes_in_bf16_and_keeps_float32_gradients() -> None:
    fast, plain = pair(16, 1, 5, 2, 1)
    x = torch.randn(4, 16, 14, 14)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ya, yb = fast(xa), plain(xb)
    assert ya.dtype == yb.dtype == torch.bfloat16
    torch.testing.assert_close(ya.float(), yb.float(), rtol=2e-2, atol=2e-2)
    ya.float().sum().backward()
    yb.float().sum().backward()
    assert xa.grad.dtype == fast.weight.grad.dtype == torch.float32
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad)


def test_only_thin_stride_2_layers_take_the_phase_path(monkeypatch) -> None:
    calls = []
    original = gnn.PhaseTransposedConv.apply
    monkeypatch.setattr(gnn.PhaseTransposedConv, "apply", lambda *a: calls.append(a[0].shape) or original(*a))
    gnn.ConvTranspose2d(16, 1, 5, 2, 2, output_padding=1)(torch.randn(2, 16, 14, 14))
    assert len(calls) == 1
    gnn.ConvTranspose2d(32, 16, 5, 2, 2, output_padding=1)(torch.randn(2, 32, 7, 7))  # wide: oneDNN's own is faster
    gnn.ConvTranspose2d(16, 1, 4, 1, 0)(torch.randn(2, 16, 5, 5))  # stride 1
    assert len(calls) == 1


@pytest.mark.parametrize("name", ["conv-vae", "conv-vae-4x4", "dcgan"])
def test_decoders_use_it_and_keep_their_parameter_names(name) -> None:
    model = create_model(name)
    last = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)][-1]
    assert type(last) is gnn.ConvTranspose2d and last.out_channels == 1
    assert "weight" in dict(last.named_parameters())
