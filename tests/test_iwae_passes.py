"""How metrics.iwae_nll runs its passes: sized by the model's largest layer output, NHWC for conv models on the CPU,
and with --precision bf16 the likelihood networks in bfloat16 while every density stays float32."""
from __future__ import annotations

import pytest
import torch
from test_metrics import LinearGaussian

from genlab import metrics
from genlab.errors import ConfigError
from genlab.models.registry import create_model
from genlab.nn import DeconvStack
from genlab.options import EvaluationOptions


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def binary_images(n: int, shape=(1, 28, 28), seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, *shape, generator=generator) < 0.3).to(torch.uint8) * 255


def test_passes_are_sized_by_the_largest_layer_output() -> None:
    image = binary_images(1)
    # the MLP's largest output is its 784 logits: 4096 codes; conv-vae's 16x14x14 layer holds 3136 values per code
    assert metrics.decodes_per_pass(create_model("vae"), image) == 4096
    assert metrics.decodes_per_pass(create_model("conv-vae"), image) == 4096 * 784 // 3136
    assert metrics.decodes_per_pass(create_model("conv-vae", conv_channels=(16, 64)), image) == 4096 * 784 // 3136
    assert metrics.decodes_per_pass(create_model("conv-vae", conv_channels=(32, 32)), image) == 4096 * 784 // 6272
    # in bfloat16 the conv layers' outputs take half the bytes; the MLP's largest stays its float32 logits
    assert metrics.decodes_per_pass(create_model("conv-vae"), image, "bf16") == 2 * 4096 * 784 // 3136
    assert metrics.decodes_per_pass(create_model("vae"), image, "bf16") == 4096


def test_the_default_passes_draw_what_a_fixed_size_of_theirs_draws(monkeypatch) -> None:
    # sizing the passes runs the model once; that run must not move the estimate's random stream
    model, x = create_model("conv-vae").eval(), binary_images(3)
    sizes: list[tuple[int, int]] = []
    estimate = model.log_likelihood
    monkeypatch.setattr(model, "log_likelihood", lambda batch, k: sizes.append((len(batch), k)) or estimate(batch, k))
    torch.manual_seed(5)
    auto = metrics.iwae_nll(model, x, k=1000)
    assert sizes[1:] == [(1, 1000)] * 3  # the first call is the sizing run
    torch.manual_seed(5)
    fixed = metrics.iwae_nll(model, x, k=1000, max_decodes=1024)
    assert torch.equal(auto, fixed)


def test_conv_passes_run_nhwc_and_leave_the_weights_as_they_were() -> None:
    model, x = create_model("conv-vae").eval(), binary_images(2)
    layouts: list[bool] = []
    stack = next(m for m in model.modules() if isinstance(m, DeconvStack))  # its layers run as a pair: no hooks
    stack.register_forward_hook(lambda m, i, o: layouts.append(m[0].weight.is_contiguous(memory_format=torch.channels_last)
                                                               and not m[0].weight.is_contiguous()))
    torch.manual_seed(0)
    nhwc = metrics.iwae_nll(model, x, k=300, max_decodes=300)  # one image a pass, as below
    assert layouts and all(layouts)
    assert all(w.is_contiguous() for w in model.parameters())
    torch.manual_seed(0)
    with torch.no_grad():  # the same draws in NCHW
        plain = -torch.stack([model.log_likelihood(image[None].float() / 255, 300)[0] for image in x])
    assert torch.allclose(nhwc, plain, atol=1e-3)


def test_bf16_runs_only_the_likelihood_networks_in_bfloat16() -> None:
    model, x = create_model("conv-vae").eval(), binary_images(4)
    dtypes: dict[str, set[torch.dtype]] = {"encoder": set(), "decoder inside": set(), "decoder out": set()}
    model.mu_head.register_forward_hook(lambda m, i, o: dtypes["encoder"].add(o.dtype))
    model.decoder[0].register_forward_hook(lambda m, i, o: dtypes["decoder inside"].add(o.dtype))
    model.decoder.register_forward_hook(lambda m, i, o: dtypes["decoder out"].add(o.dtype))
    torch.manual_seed(0)
    full = metrics.iwae_nll(model, x, k=200)
    torch.manual_seed(0)
    half = metrics.iwae_nll(model, x, k=200, precision="bf16")
    assert dtypes == {"encoder": {torch.float32}, "decoder inside": {torch.float32, torch.bfloat16},
                      "decoder out": {torch.float32}}
    assert half.dtype == torch.float32
    assert 0 < float((half - full).abs().max()) < 0.5  # a different rounding, not a different estimate
    assert "forward" not in vars(model.decoder)  # the network is its class's own again


def test_the_hvae_keeps_its_z1_distributions_in_float32() -> None:
    model, x = create_model("hvae").eval(), binary_images(2)
    seen: dict[str, set[torch.dtype]] = {"q_z1": set(), "p_z1": set(), "p_x": set()}
    for name, module in (("q_z1", model.q_z1[1]), ("p_z1", model.p_z1), ("p_x", model.p_x[0])):  # q_z1's head
        module.register_forward_hook(lambda m, i, o, name=name: seen[name].add(
            (o[0] if isinstance(o, tuple) else o).dtype))
    torch.manual_seed(0)
    full = metrics.iwae_nll(model, x, k=100)
    torch.manual_seed(0)
    half = metrics.iwae_nll(model, x, k=100, precision="bf16")
    assert seen["q_z1"] == seen["p_z1"] == {torch.float32}
    assert seen["p_x"] == {torch.float32, torch.bfloat16}  # p_x's first layer, inside the likelihood network
    assert float((half - full).abs().max()) < 0.5


def test_bf16_needs_named_likelihood_networks(tmp_path) -> None:
    model = LinearGaussian().requires_grad_(False)
    with pytest.raises(ConfigError, match="likelihood networks"):
        metrics.iwae_nll(model, torch.randn(2, 6, dtype=torch.float64), k=3, precision="bf16")
    assert EvaluationOptions(precision="bf16").precision == "bf16"
    with pytest.raises(ConfigError):
        EvaluationOptions(precision="fp16")


def test_no_images_give_no_estimates() -> None:
    # under torchrun a rank's share of fewer test images than ranks is empty; it has no image to size passes by
    nll = metrics.iwae_nll(create_model("conv-vae").eval(), binary_images(0), k=10)
    assert nll.shape == (0,)
