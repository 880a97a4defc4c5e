"""genlab.nn.DeconvStack: without gradients on the CPU, two transposed convolutions that double the size run as two
ordinary convolutions on the first one's input grid, giving what the layers give."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab import nn as gnn
from genlab.models.registry import create_model
from genlab.training.steps import make_optimizers


def stack_of(model: nn.Module) -> gnn.DeconvStack:
    return next(m for m in model.modules() if isinstance(m, gnn.DeconvStack))


def counting_pairs(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = gnn.DeconvStack.pair_forward
    monkeypatch.setattr(gnn.DeconvStack, "pair_forward", lambda self, i, *a: calls.append(i) or original(self, i, *a))
    return calls


def layers_and_pair(stack: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        layers = stack(x).detach()
    with torch.no_grad():
        return layers, stack(x)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("batch", [1, 5])
def test_conv_vae_decoder_runs_its_pair_and_gives_what_its_layers_give(monkeypatch, channels_last, batch) -> None:
    torch.manual_seed(0)
    model = create_model("conv-vae").eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    calls = counting_pairs(monkeypatch)
    z = torch.randn(batch, model.latent_dim)
    with torch.enable_grad():
        layers = model.decoder(z).detach()
    assert calls == []  # with gradients the layers run as they are
    with torch.no_grad():
        pair = model.decoder(z)
    assert calls == [0]
    assert pair.shape == layers.shape == (batch, 1, 28, 28) and pair.is_contiguous()
    torch.testing.assert_close(pair, layers, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", [nn.LeakyReLU(0.25), nn.ReLU(), nn.Tanh()])  # 0.25: exact in binary
@pytest.mark.parametrize("cin, mid, cout, k, p, q, side", [(32, 16, 1, 5, 2, 1, 7), (6, 4, 2, 3, 1, 1, 5),
                                                          (4, 3, 1, 4, 1, 0, 6), (5, 2, 3, (5, 3), (2, 1), 1, 4)])
def test_small_integer_weights_give_the_same_numbers_exactly(monkeypatch, activation, cin, mid, cout, k, p, q,
                                                              side) -> None:
    """Integer weights and inputs make every sum exact: the pair's kernels hold the layers' weights, no more."""
    first = nn.ConvTranspose2d(cin, mid, k, 2, p, output_padding=q)
    second = nn.ConvTranspose2d(mid, cout, k, 2, p, output_padding=q)
    stack = gnn.DeconvStack(first, activation, second)
    monkeypatch.setattr(gnn, "MAX_PAIR_WORK", float("inf"))  # these shapes are for arithmetic, not for speed
    calls = counting_pairs(monkeypatch)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in (first, second):
            layer.weight.copy_(torch.randint(-3, 4, layer.weight.shape, generator=generator))
            layer.bias.copy_(torch.randint(-3, 4, layer.bias.shape, generator=generator))
    x = torch.randint(-2, 3, (2, cin, side, side), generator=generator).float()
    layers, pair = layers_and_pair(stack, x)
    assert calls == [0]
    assert pair.shape == layers.shape == (2, cout, 4 * side, 4 * side)
    if isinstance(activation, nn.Tanh):
        torch.testing.assert_close(pair, layers, rtol=1e-5, atol=1e-5)
    else:
        assert torch.equal(pair, layers)


def test_new_weights_make_new_kernels() -> None:
    torch.manual_seed(0)
    model = create_model("conv-vae").eval()
    stack, z = model.decoder, torch.randn(3, model.latent_dim)
    with torch.no_grad():
        before = stack(z)
        stack_of(model)[0].weight.mul_(2)  # in place, as an optimizer step
    layers, pair = layers_and_pair(stack, z)
    assert not torch.allclose(pair, before, atol=1e-3)
    torch.testing.assert_close(pair, layers, rtol=1e-5, atol=1e-5)
    other = create_model("conv-vae").eval()
    model.load_state_dict(other.state_dict())
    layers, pair = layers_and_pair(stack, z)
    torch.testing.assert_close(pair, layers, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pair, other.decoder(z).detach(), rtol=1e-5, atol=1e-5)


def test_genlab_s_fused_adam_steps_make_new_kernels() -> None:
    """A fused optimizer step writes the weights without bumping their version counters: the held-out loss between
    epochs must still see this epoch's weights."""
    torch.manual_seed(0)
    model = create_model("conv-vae")
    optimizer = make_optimizers(model, lr=1e-3)["model"]
    z, x = torch.randn(8, model.latent_dim), (torch.rand(16, 1, 28, 28) > 0.5).float()
    with torch.no_grad():
        before = model.decoder(z)
    for _ in range(5):
        optimizer.zero_grad()
        model.loss(x)["loss"].backward()
        optimizer.step()
    layers, pair = layers_and_pair(model.decoder, z)
    assert not torch.allclose(layers, before, atol=1e-3)
    torch.testing.assert_close(pair, layers, rtol=1e-5, atol=1e-5)


def test_writes_through_data_make_new_kernels() -> None:
    torch.manual_seed(0)
    model = create_model("conv-vae").eval()
    z, first = torch.randn(3, model.latent_dim), stack_of(model)[0]
    with torch.no_grad():
        model.decoder(z)
    first.weight.data.mul_(2)  # .data has a version counter of its own
    layers, pair = layers_and_pair(model.decoder, z)
    torch.testing.assert_close(pair, layers, rtol=1e-5, atol=1e-5)
    replacement = first.weight.detach().clone()
    first.weight.data = replacement
    with torch.no_grad():
        model.decoder(z)
        replacement.mul_(3)
    layers, pair = layers_and_pair(model.decoder, z)
    torch.testing.assert_close(pair, layers, rtol=1e-5, atol=1e-5)


def test_under_bf16_autocast_the_pair_computes_in_bf16_and_its_kernels_serve_float32_after(monkeypatch) -> None:
    torch.manual_seed(0)
    model = create_model("conv-vae").eval()
    z = torch.randn(8, model.latent_dim)
    calls = counting_pairs(monkeypatch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layers, pair = layers_and_pair(model.decoder, z)
    assert calls == [0]
    assert pair.dtype == layers.dtype == torch.bfloat16
    torch.testing.assert_close(pair.float(), layers.float(), rtol=3e-2, atol=3e-2)
    layers, pair = layers_and_pair(model.decoder, z)  # float32 now, the kernels made under autocast kept
    assert calls == [0, 0] and pair.dtype == torch.float32
    torch.testing.assert_close(pair, layers, rtol=1e-5, atol=1e-5)


def test_hooked_and_parametrized_layers_run_as_themselves(monkeypatch) -> None:
    torch.manual_seed(0)
    model = create_model("conv-vae").eval()
    z, stack = torch.randn(3, model.latent_dim), stack_of(model)
    calls = counting_pairs(monkeypatch)
    seen = []
    handle = stack[2].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    layers, pair = layers_and_pair(model.decoder, z)
    assert calls == [] and len(seen) == 2  # the hook saw both calls
    handle.remove()
    torch.nn.utils.parametrizations.weight_norm(stack[0])
    with torch.no_grad():
        stack[0].parametrizations.weight.original0.mul_(1.5)
    layers, pair = layers_and_pair(model.decoder, z)
    assert calls == []
    torch.testing.assert_close(pair, layers)


@pytest.mark.parametrize("name, shape, work", [("conv-vae", (1, 28, 28), [1.92]),
                                               ("beta-vae-conv64", (1, 64, 64), [6.75, 6.75, 3.0]),
                                               ("conv-vae-64", (3, 64, 64), [6.75, 6.75, 4.09])])
def test_only_pairs_with_few_zeros_in_their_kernels_run_as_pairs(monkeypatch, name, shape, work) -> None:
    """conv-vae's 5x5 layers make 3x3 phase kernels with few zeros; the 64-pixel nets' 4x4 layers make kernels with
    three to seven times the work, which ran slower than the layers."""
    model = create_model(name, image_shape=shape).eval()
    stack = stack_of(model)
    pairs = [i for i in range(len(stack)) if stack.pairs_at(i)]
    measured = [gnn.pair_work(stack[i], stack[i + 2], *gnn.pair_kernels(stack[i], stack[i + 2])[::2]) for i in pairs]
    assert measured == pytest.approx(work, abs=0.01)
    calls = counting_pairs(monkeypatch)
    z = torch.randn(2, model.latent_dim)
    layers, pair = layers_and_pair(model.decoder, z)
    assert calls == [0] * (name == "conv-vae")
    torch.testing.assert_close(pair, layers, rtol=1e-5, atol=1e-5)


def test_layers_that_do_not_double_exactly_run_as_they_are(monkeypatch) -> None:
    model = create_model("conv-vae-4x4").eval()  # 'valid' padding: 5 -> 13 -> 28
    assert not any(stack_of(model).pairs_at(i) for i in range(len(stack_of(model))))
    assert not gnn.doubles_exactly(nn.ConvTranspose2d(4, 4, 5, 2, 2))  # 2i - 1 rows
    assert not gnn.doubles_exactly(nn.ConvTranspose2d(4, 4, 4, 2, 1, dilation=1, groups=2))
    assert gnn.doubles_exactly(nn.ConvTranspose2d(4, 4, 4, 2, 1)) and gnn.doubles_exactly(
        nn.ConvTranspose2d(4, 4, 5, 2, 2, output_padding=1))
    calls = counting_pairs(monkeypatch)
    layers, pair = layers_and_pair(model.decoder, torch.randn(2, model.latent_dim))
    assert calls == []
    torch.testing.assert_close(pair, layers)
