"""Small network blocks shared by the models: MLPs and conv / transposed-conv stacks."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from genlab.sizes import conv_sizes
from genlab.threads import without_avx512


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's (first) parameters: where its inputs must go."""
    return next(module.parameters()).device


def is_nhwc(t: Tensor) -> bool:
    """Whether a 4-d tensor is laid out channels-last (and is not also plain contiguous, as 1x1 images are)."""
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def same_content(kept: Sequence[Tensor], weights: Sequence[Tensor]) -> bool:
    """Whether `weights` hold exactly the values of the copies `kept` (NaN never matches: recomputed). The key of
    a cache made from weights: version counters miss fused optimizer steps and writes through `.data`.

    Reads every weight once; one CPU-GPU sync point for all.
    """
    if len(kept) != len(weights) or any(a.shape != b.shape or a.dtype != b.dtype or a.device != b.device
                                        for a, b in zip(kept, weights)):
        return False
    if not weights:
        return True
    return not bool(torch.stack([(a != b).any().to(kept[0].device) for a, b in zip(kept, weights)]).any())


# ---------------------------------------------------------------- a transposed convolution with few outputs


PHASE_MAX_OUT = 4  # at most this many output channels: 4 phases x 4 = 16 fill a vector of the direct conv kernel


def phase_taps(k: int, p: int, n: int, size: int) -> tuple[Tensor, Tensor, int, int]:
    """The 1-d plan of a stride-2 transposed conv (kernel k, padding p, n inputs, `size` outputs) as one ordinary
    convolution per output phase r (outputs 2m + r): out[2m + r] = sum_a xpad[m + a] * w[2(P - a) + r + p], xpad
    the input with P zeros before and R after. Returns the kernel index (2, A) of each phase's A taps, whether each
    exists (inside 0..k-1), P and R."""
    lows = [-((r + p) // 2) for r in (0, 1)]  # e = m - i from ceil(-(r + p) / 2) ...
    highs = [(k - 1 - r - p) // 2 for r in (0, 1)]  # ... to floor((k - 1 - r - p) / 2)
    before, taps = max(highs), max(highs) - min(lows) + 1
    index = torch.tensor([[2 * (before - a) + r + p for a in range(taps)] for r in (0, 1)])
    after = (size + 1) // 2 - n - before + taps - 1
    return index.clamp(0, k - 1), (index >= 0) & (index < k), before, after


def interleave_phases(y: Tensor, channels: int, factor: int = 2) -> Tensor:
    """pixel_shuffle(y, factor): (N, f^2 C, H, W) -> (N, C, fH, fW). For one channel, where NCHW and NHWC are the
    same memory, as a reshape of a permuted view, which runs in about half pixel_shuffle's time (1000 x 4 x 14 x 14
    bfloat16 in NHWC: 0.71 against 1.71 ms; float32 in NCHW: 0.72 against 1.10 ms)."""
    if channels != 1:
        return torch.nn.functional.pixel_shuffle(y, factor)
    n, _, h, w = y.shape
    return y.unflatten(1, (1, factor, factor)).permute(0, 1, 4, 2, 5, 3).reshape(n, 1, factor * h, factor * w)


def activate_fresh(activation: nn.Module, y: Tensor) -> Tensor:
    """activation(y) for a y that nothing else holds (a layer's fresh output): a ReLU or a leaky ReLU of slope >= 0
    runs in place, saving a pass and an allocation (autograd refuses a negative slope in place)."""
    slope = 0.0 if isinstance(activation, nn.ReLU) else getattr(activation, "negative_slope", -1.0)
    if isinstance(activation, (nn.ReLU, nn.LeakyReLU)) and slope >= 0:
        return F.leaky_relu_(y, slope)
    return activation(y)


class PhaseTransposedConv(torch.autograd.Function):
    """Forward: a stride-2 transposed convolution as one convolution whose 4 x C_out outputs are the 4 phases of
    the output, interleaved by pixel_shuffle; backward: PyTorch's own transposed-conv gradients."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int],
                output_padding: tuple[int, int]) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.output_padding, ctx.has_bias = padding, output_padding, bias is not None
        cin, cout, kh, kw = weight.shape
        size = [(x.shape[2 + d] - 1) * 2 - 2 * padding[d] + weight.shape[2 + d] + output_padding[d] for d in (0, 1)]
        (ih, vh, ph, rh), (iw, vw, pw, rw) = (phase_taps(weight.shape[2 + d], padding[d], x.shape[2 + d], size[d])
                                              for d in (0, 1))
        taps = weight.permute(1, 0, 2, 3)[:, :, ih[:, None, :, None], iw[None, :, None, :]]  # (cout, cin, 2, 2, A, B)
        taps = taps * (vh[:, None, :, None] & vw[None, :, None, :]).to(weight.dtype)
        kernel = taps.permute(0, 2, 3, 1, 4, 5).reshape(cout * 4, cin, ih.shape[1], iw.shape[1])
        if is_nhwc(x):
            kernel = kernel.contiguous(memory_format=torch.channels_last)
        bias4 = None if bias is None else bias.repeat_interleave(4)
        if (pw, ph) == (rw, rh) and min(pw, ph) >= 0:  # symmetric: the conv pads as it reads, no padded copy first
            y = torch.nn.functional.conv2d(x, kernel, bias4, padding=(ph, pw))
        else:
            y = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (pw, rw, ph, rh)), kernel, bias4)
        return interleave_phases(y, cout)[:, :, :size[0], :size[1]]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        wanted = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        dx, dw, db = torch.ops.aten.convolution_backward(
            grad, x, weight, [weight.shape[1]] if ctx.has_bias else None, [2, 2], list(ctx.padding), [1, 1], True,
            list(ctx.output_padding), 1, wanted)
        return dx, dw, db, None, None


class ConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d, whose forward on the CPU runs as `PhaseTransposedConv` when that is much faster: stride
    2 and at most PHASE_MAX_OUT output channels (a decoder's last layer), where oneDNN's transposed kernel reaches
    a few GFLOP/s (conv-vae's last layer, 16 -> 1 channels at 14x14 -> 28x28, batch 128: 2.70-2.83 ms forward, the
    phase conv 1.13-1.39 ms; benchmarks/conv_profile.py).
    Same parameters, state dict and results up to float rounding."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if (output_size is None and x.device.type == "cpu" and x.dim() == 4 and self.stride == (2, 2)
                and self.dilation == (1, 1) and self.groups == 1 and self.out_channels <= PHASE_MAX_OUT
                and self.padding_mode == "zeros"):
            weight, bias = self.weight, self.bias
            if torch.is_autocast_enabled("cpu"):  # as autocast runs a conv: inputs and weights in its dtype
                dtype = torch.get_autocast_dtype("cpu")
                x, weight, bias = x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype)
            with torch.autocast("cpu", enabled=False):
                return PhaseTransposedConv.apply(x, weight, bias, self.padding, self.output_padding)
        return super().forward(x, output_size)


# ---------------------------------------------------------------- two transposed convolutions as two convolutions


ELEMENTWISE = (nn.LeakyReLU, nn.ReLU, nn.ELU, nn.SiLU, nn.GELU, nn.Tanh, nn.Sigmoid)  # may sit between a pair


def doubles_exactly(layer: nn.Module) -> bool:
    """Whether `layer` is a stride-2 transposed convolution whose output is exactly twice its input on each side
    (kernel + output padding = 2 + 2 padding), zero-padded, ungrouped and undilated: what a pair can be made of."""
    return (isinstance(layer, nn.ConvTranspose2d) and layer.stride == (2, 2) and layer.dilation == (1, 1)
            and layer.groups == 1 and layer.padding_mode == "zeros"
            and all(k + q == 2 + 2 * p for k, p, q in zip(layer.kernel_size, layer.padding, layer.output_padding)))


def impulse_kernel(transform: Callable[[Tensor, Sequence[Tensor]], Tensor], weights: Sequence[Tensor],
                   channels: int, factor: int, reach: int) -> Tensor:
    """The kernel (out, in, 2a + 1, 2b + 1), padded (a, b), of the ordinary convolution that equals
    pixel_unshuffle(transform(x, weights), factor), where transform is linear, takes `channels` channels and
    scales the sides by `factor` exactly, so that shifting x by one pixel shifts the result by `factor`.

    Read off the responses to one unit impulse per input channel at the centre of a (2 reach + 1)^2 grid: every
    output of a response is one weight times 1, so the kernel holds the weights exactly. The same impulses
    through all-ones weights mark which offsets the map reaches; the window is the smallest centred one that
    holds them (reach must exceed it)."""
    side = 2 * reach + 1
    impulses = torch.zeros(channels, channels, side, side, dtype=weights[0].dtype, device=weights[0].device)
    impulses[range(channels), range(channels), reach, reach] = 1
    response = F.pixel_unshuffle(transform(impulses, weights), factor)  # (in, out, side, side)
    ones = [torch.ones_like(w) for w in weights]
    reached = F.pixel_unshuffle(transform(impulses, ones), factor).sum((0, 1)) > 0
    a, b = (int((dim.any(other).nonzero() - reach).abs().max()) for dim, other in ((reached, 1), (reached, 0)))
    if max(a, b) >= reach:
        raise ValueError(f"impulse responses reach {max(a, b)} pixels, beyond the probe's {reach - 1}")
    window = response[:, :, reach - a:reach + a + 1, reach - b:reach + b + 1]
    return window.flip(2, 3).transpose(0, 1).contiguous()  # the flip turns a response into a correlation kernel


def pair_kernels(first: nn.ConvTranspose2d, second: nn.ConvTranspose2d) -> tuple[Tensor, ...]:
    """Kernels and biases of two convolutions on the input grid of `first` for the pair first, second (each
    `doubles_exactly`): A gives first's output as its 2x2 phases (channel c * 4 + phase, as pixel_unshuffle
    orders them), B takes those phases to the 4x4 phases of second's output. An elementwise function between the
    two layers commutes with the phase layout, so second(f(first(x))) = pixel_shuffle(B(f(A(x))), 4)."""
    reach = max(*first.kernel_size, *second.kernel_size) + 1

    def first_map(x: Tensor, w: Sequence[Tensor]) -> Tensor:
        return F.conv_transpose2d(x, w[0], None, 2, first.padding, first.output_padding)

    def second_map(x: Tensor, w: Sequence[Tensor]) -> Tensor:
        return F.conv_transpose2d(F.pixel_shuffle(x, 2), w[0], None, 2, second.padding, second.output_padding)

    kernel_a = impulse_kernel(first_map, [first.weight.detach()], first.in_channels, 2, reach)
    kernel_b = impulse_kernel(second_map, [second.weight.detach()], 4 * second.in_channels, 4, reach)
    bias_a = None if first.bias is None else first.bias.detach().repeat_interleave(4)
    bias_b = None if second.bias is None else second.bias.detach().repeat_interleave(16)
    return kernel_a, bias_a, kernel_b, bias_b


MAX_PAIR_WORK = 2.0  # pairs run when their convolutions do at most this many times the layers' multiply-adds


def pair_work(first: nn.ConvTranspose2d, second: nn.ConvTranspose2d, kernel_a: Tensor, kernel_b: Tensor) -> float:
    """Multiply-adds of the pair's two convolutions over those of the two layers, per pixel of the pair's input
    grid (the phase kernels hold zeros): conv-vae's decoder 1.92; the 64-pixel nets' pairs 3.0 to 6.75."""
    return (kernel_a.numel() + kernel_b.numel()) / (first.weight.numel() + 4 * second.weight.numel())


def runs_as_written(module: nn.Module) -> bool:
    """Whether a module's forward is its class's alone: no forward hooks or pre-hooks (weight_norm's old form is
    one) and no parametrized weights, whose value the forward computes. A pair skips its layers' forwards, so it
    runs only on such layers."""
    return not (module._forward_hooks or module._forward_pre_hooks or parametrize.is_parametrized(module))


class DeconvStack(nn.Sequential):
    """`deconv_stack`'s layers. Inference on the CPU (gradients off) runs each pair of transposed convolutions
    that double the size exactly, with an elementwise activation between them, as two ordinary convolutions on
    the pair's input grid (`pair_kernels`) and one interleave of the result, where the pair's convolutions do at
    most MAX_PAIR_WORK times the layers' work: oneDNN runs an ordinary convolution much faster than a transposed
    one of the same size, enough to pay for the zeros in the phase kernels when they are few: conv-vae's decoder
    (one pair, 1.92x the work) decoded 1000 codes at 2.0-2.2x the plain layers' speed, while forcing the 64-pixel
    nets' pairs (3 to 6.75 times the work) made their decoders 0.62-1.02x the plain layers'
    (benchmarks/decoder_pairs.py, docs/benchmarks.md). The kernels are kept with a copy of the weights they were
    made from and made again when the weights hold other values. Training steps (gradients on), other devices,
    and layers with hooks or parametrized weights run the layers as they are."""

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() or x.device.type != "cpu" or x.dim() != 4:
            return super().forward(x)
        layers, i = list(self), 0
        while i < len(layers):
            kernels = self.pair_at(i, x) if self.pairs_at(i) else None
            if kernels is not None:
                x = self.pair_forward(i, x, kernels)
                i += 3
            else:
                x = layers[i](x)
                i += 1
        return x

    def pairs_at(self, i: int) -> bool:
        """Whether layers i, i + 1, i + 2 are a transposed conv, an elementwise activation and a transposed conv
        that can run as a pair."""
        return (i + 2 < len(self) and doubles_exactly(self[i]) and isinstance(self[i + 1], ELEMENTWISE)
                and doubles_exactly(self[i + 2]) and all(runs_as_written(self[j]) for j in (i, i + 1, i + 2)))

    def pair_forward(self, i: int, x: Tensor, kernels: tuple[Tensor | None, ...]) -> Tensor:
        kernel_a, bias_a, kernel_b, bias_b = kernels
        y = F.conv2d(x, kernel_a, bias_a, padding=(kernel_a.shape[2] // 2, kernel_a.shape[3] // 2))
        y = activate_fresh(self[i + 1], y)
        y = F.conv2d(y, kernel_b, bias_b, padding=(kernel_b.shape[2] // 2, kernel_b.shape[3] // 2))
        return interleave_phases(y, self[i + 2].out_channels, 4)

    def pair_at(self, i: int, x: Tensor) -> tuple[Tensor | None, ...] | None:
        """The pair at i's kernels and biases (`pair_kernels`) in the weights' dtype, NHWC when the input or the
        weights are, or None where the pair is not worth running (`pair_work`). Kept with a copy of the weights
        and the layers' settings, and made again when either differs (`same_content`: version counters miss fused
        optimizer steps, such as genlab's Adam, and writes through `.data`)."""
        first, second = self[i], self[i + 2]
        nhwc = is_nhwc(x) or is_nhwc(first.weight)
        settings = (nhwc, MAX_PAIR_WORK, *((m.padding, m.output_padding, m.kernel_size) for m in (first, second)))
        weights = [p.detach() for m in (first, second) for p in (m.weight, m.bias) if p is not None]
        cache = self.__dict__.setdefault("_pair_cache", {})
        kept = cache.get(i)
        if kept is None or kept[0] != settings or not same_content(kept[1], weights):
            with torch.autocast(x.device.type, enabled=False):  # the weights' own dtype, whatever calls first
                kernel_a, bias_a, kernel_b, bias_b = pair_kernels(first, second)
            kernels = None
            if pair_work(first, second, kernel_a, kernel_b) <= MAX_PAIR_WORK:
                if nhwc:
                    kernel_a, kernel_b = (k.contiguous(memory_format=torch.channels_last) for k in (kernel_a, kernel_b))
                kernels = (kernel_a, bias_a, kernel_b, bias_b)
            cache[i] = (settings, [w.clone() for w in weights], kernels)
        return cache[i][2]


NHWC_MIN_SIDE = 64  # conv models of images this wide or wider run NHWC on the CPU by default


def nhwc_at_every_size() -> bool:
    """Whether this CPU runs conv models faster in NHWC whatever their image size: an x86 CPU without AVX-512, where
    oneDNN's NCHW gradients of layers with one input or output channel are 2-5x slower than NHWC's (an AVX2-only
    AMD EPYC: a conv-vae step 1.10-1.20x faster in NHWC, conv-vae-4x4's 1.59x, the 28-pixel DCGAN's 1.21x;
    benchmarks/conv_profile.py, docs/benchmarks.md). With AVX-512 the 28-pixel conv-vae's step is 0.92-0.99x."""
    return without_avx512()


def has_convolutions(module: nn.Module) -> bool:
    """Whether the module holds a 2-d convolution or transposed convolution."""
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in module.modules())


def memory_format(module: nn.Module, device: torch.device, channels_last: bool | None = None) -> torch.memory_format:
    """The layout a model runs in: `channels_last` when given (True: NHWC), else NHWC for conv models on the CPU
    that are of images of 64x64 pixels or more, whose oneDNN kernels run faster there (a conv-vae-64 step 1.12x, the
    64-pixel DCGAN's 1.08x), or that run on an x86 CPU without AVX-512 (`nhwc_at_every_size`); NCHW elsewhere (with
    AVX-512, the 28-pixel conv-vae's step is 0.92x-0.99x in NHWC; benchmarks/conv_profile.py). A conv whose weight
    is NHWC makes its output NHWC whatever its input, so converting the weights is enough; the run's files store
    NCHW."""
    if channels_last is None:
        shape = getattr(getattr(module, "config", None), "image_shape", None)
        large = shape is not None and len(shape) == 3 and min(shape[1:]) >= NHWC_MIN_SIDE
        channels_last = device.type == "cpu" and (large or nhwc_at_every_size()) and has_convolutions(module)
    return torch.channels_last if channels_last else torch.contiguous_format


def gaussian_blur(x: Tensor, sigma: float | Tensor, max_sigma: float | None = None) -> Tensor:
    """Blur each channel of (N, C, H, W) with a Gaussian of std `sigma` pixels: one std for the batch, or (N,)
    stds, one per image (0 leaves an image as it is). Separable; edges repeated. The kernels reach 3 max_sigma
    pixels: given an upper bound on per-image stds, they stay on the device (no host sync in a training step);
    by default max_sigma is the largest std."""
    n, channels = x.shape[:2]
    if max_sigma is None:
        max_sigma = float(sigma.max()) if isinstance(sigma, Tensor) else float(sigma)
    sigmas = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(n)
    radius = max(1, math.ceil(3 * max_sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernels = torch.exp(-0.5 * (t / sigmas.clamp_min(1e-3)[:, None]) ** 2)  # (N, K); std 0 -> [0, .., 1, .., 0]
    kernels = (kernels / kernels.sum(1, keepdim=True)).repeat_interleave(channels, 0)  # (N * C, K)
    planes = F.pad(x.reshape(1, n * channels, *x.shape[2:]), (radius,) * 4, mode="replicate")
    planes = F.conv2d(planes, kernels[:, None, None, :], groups=n * channels)
    return F.conv2d(planes, kernels[:, None, :, None], groups=n * channels).reshape(x.shape)


def standard_normal(n: int, dim: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I), (n, dim), on `device`: drawn on the generator's device when one is given (a seeded CPU
    generator gives the same codes on any device), then moved."""
    z = torch.randn(n, dim, generator=generator, device=generator.device if generator else device)
    return z.to(device)


class GatedLinear(nn.Module):
    """A gated hidden layer (Dauphin et al. 2017): h = (W1 x + b1) * sigmoid(W2 x + b2), (N, n_in) -> (N, n_out)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, 2 * n_out)  # W1 and W2 stacked: one matmul computes both halves

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(self.linear(x), dim=-1)  # the first half times the sigmoid of the second, in one pass


def mlp(sizes: Sequence[int], activation: Callable[[], nn.Module] = nn.ReLU,
        final_activation: bool = False, batch_norm: bool = False, gated: bool = False) -> nn.Sequential:
    """Linear layers sizes[0] -> ... -> sizes[-1] with `activation` (after batch norm, if asked) between them;
    gated: every hidden layer a GatedLinear instead (no batch norm, no separate activation)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        hidden = i < len(sizes) - 2 or final_activation
        if hidden and gated:
            layers.append(GatedLinear(n_in, n_out))
            continue
        # a bias before batch norm is cancelled by its mean subtraction: leave it out
        layers.append(nn.Linear(n_in, n_out, bias=not (hidden and batch_norm)))
        if hidden:
            layers += [nn.BatchNorm1d(n_out)] if batch_norm else []
            layers.append(activation())
    return nn.Sequential(*layers)


def pad_width(kernel_size: int, padding: str) -> int:
    """Zeros added on each side by a stride-2 conv: 'same' k // 2 (odd k: o = i / 2 for even i), 'half' k / 2 - 1
    (even k, as TensorFlow's SAME: o = floor(i / 2) for any i), 'valid' none."""
    return {"same": kernel_size // 2, "half": (kernel_size - 2) // 2}.get(padding, 0)


def conv_stack(channels: Sequence[int], kernel_size: int = 5, padding: str = "same",
               activation: Callable[[], nn.Module] | None = None) -> nn.Sequential:
    """Stride-2 convolutions channels[0] -> ... -> channels[-1], each followed by `activation` (leaky ReLU 0.2);
    'same' padding halves H and W exactly, 'half' halves them rounding down."""
    activation = activation or leaky_relu
    layers: list[nn.Module] = []
    for n_in, n_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(n_in, n_out, kernel_size, stride=2, padding=pad_width(kernel_size, padding)),
                   activation()]
    return nn.Sequential(*layers)


def deconv_stack(channels: Sequence[int], kernel_size: int, heights: Sequence[int], widths: Sequence[int],
                 padding: str = "same", activation: Callable[[], nn.Module] | None = None) -> DeconvStack:
    """Stride-2 transposed convolutions walking `heights`/`widths` (small to large), `activation` (leaky ReLU 0.2)
    between them and none after the last.

    'same': o = 2(i - 1) - 2p + k + 1 = 2i with p = k // 2, k odd. 'half': o = 2(i - 1) - 2p + k + q = 2i + q with
    p = k / 2 - 1, k even, and the output padding q (0 or 1) gives back the row an odd size lost. 'valid': p = 0 and
    the kernel is chosen per layer so that o = 2(i - 1) + k' lands exactly on the encoder's size.
    """
    activation = activation or leaky_relu
    layers: list[nn.Module] = []
    pairs = list(zip(channels[:-1], channels[1:]))
    for i, (n_in, n_out) in enumerate(pairs):
        if padding == "same":
            layers.append(ConvTranspose2d(n_in, n_out, kernel_size, stride=2, padding=kernel_size // 2,
                                             output_padding=1))
        elif padding == "half":
            odd_rows = (heights[i + 1] - 2 * heights[i], widths[i + 1] - 2 * widths[i])
            layers.append(ConvTranspose2d(n_in, n_out, kernel_size, stride=2, padding=(kernel_size - 2) // 2,
                                             output_padding=odd_rows))
        else:
            kernel = (heights[i + 1] - 2 * (heights[i] - 1), widths[i + 1] - 2 * (widths[i] - 1))
            layers.append(ConvTranspose2d(n_in, n_out, kernel, stride=2))
        if i < len(pairs) - 1:
            layers.append(activation())
    return DeconvStack(*layers)


def leaky_relu() -> nn.Module:
    """The conv models' activation: leaky ReLU with slope 0.2."""
    return nn.LeakyReLU(0.2)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"leaky_relu": leaky_relu, "relu": nn.ReLU}  # by config name


def encoder_body(arch: str, image_shape: Sequence[int], hidden: Sequence[int], conv_channels: Sequence[int],
                 kernel_size: int, batch_norm: bool = False, padding: str = "same",
                 gated: bool = False, dense: Sequence[int] = (),
                 activation: str = "leaky_relu") -> tuple[nn.Module, int]:
    """Image (N, C, H, W) -> features (N, F); returns the module and F (gated: MLP hidden layers gated). Conv:
    the conv stack, then the fully connected layers `dense`, all with `activation` (a name of ACTIVATIONS)."""
    channels, height, width = image_shape
    if arch == "mlp":
        sizes = [channels * height * width, *hidden]
        body = mlp(sizes, final_activation=True, batch_norm=batch_norm, gated=gated)
        return nn.Sequential(nn.Flatten(), body), sizes[-1]
    n = len(conv_channels)
    h, w = conv_sizes(height, n, kernel_size, padding)[-1], conv_sizes(width, n, kernel_size, padding)[-1]
    act = ACTIVATIONS[activation]
    sizes = [conv_channels[-1] * h * w, *dense]
    body = nn.Sequential(conv_stack([channels, *conv_channels], kernel_size, padding, act), nn.Flatten(),
                         *mlp(sizes, act, final_activation=True))
    return body, sizes[-1]


def decoder(arch: str, latent_dim: int, image_shape: Sequence[int], hidden: Sequence[int],
            conv_channels: Sequence[int], kernel_size: int, batch_norm: bool = False,
            padding: str = "same", gated: bool = False, dense: Sequence[int] = (),
            activation: str = "leaky_relu") -> nn.Module:
    """Code (N, latent_dim) -> unbounded outputs (N, C, H, W), mirroring `encoder_body`."""
    channels, height, width = image_shape
    if arch == "mlp":
        sizes = [latent_dim, *reversed(hidden), math.prod(image_shape)]
        return nn.Sequential(mlp(sizes, batch_norm=batch_norm, gated=gated), nn.Unflatten(1, tuple(image_shape)))
    n = len(conv_channels)
    heights = conv_sizes(height, n, kernel_size, padding)[::-1]
    widths = conv_sizes(width, n, kernel_size, padding)[::-1]
    start = (conv_channels[-1], heights[0], widths[0])
    act = ACTIVATIONS[activation]
    return ConvDecoder(  # flat, so that a model without `dense` keeps its checkpoints' parameter names
        *mlp([latent_dim, *reversed(dense), math.prod(start)], act, final_activation=True), nn.Unflatten(1, start),
        deconv_stack([*reversed(conv_channels), channels], kernel_size, heights, widths, padding, act),
    )


class ConvDecoder(nn.Sequential):
    """`decoder`'s conv form: fully connected layers, the last followed by an elementwise activation, an Unflatten
    to (C, H, W) and a DeconvStack. When the transposed convolutions' weights are NHWC, the last fully connected
    layer computes its outputs in (H, W, C) order (its weight's rows permuted, a small copy), so that the
    (N, C, H, W) view of them is NHWC already. Otherwise oneDNN transposes the whole activation into NHWC before
    the first transposed convolution, in every forward and again for the gradient (conv-vae's decoder, 1000 codes
    in NHWC: 15.1-15.3 ms against 15.6-16.1 ms with the layer writing NCHW; benchmarks/decoder_pairs.py).
    The outputs are the same numbers; a (leaky) ReLU runs in place on the layer's fresh output."""

    def forward(self, z: Tensor) -> Tensor:
        if len(self) < 4 or not self.writes_nhwc():
            return super().forward(z)
        linear, activation, unflatten, stack = self[-4], self[-3], self[-2], self[-1]
        for layer in list(self)[:-4]:
            z = layer(z)
        c, h, w = unflatten.unflattened_size
        weight = linear.weight.unflatten(0, (c, h, w)).permute(1, 2, 0, 3).flatten(0, 2)  # rows in (H, W, C) order
        bias = None if linear.bias is None else linear.bias.view(c, h, w).permute(1, 2, 0).flatten()
        y = activate_fresh(activation, F.linear(z, weight, bias))
        return stack(y.unflatten(1, (h, w, c)).permute(0, 3, 1, 2))

    def writes_nhwc(self) -> bool:
        """Whether the layers before the DeconvStack are [..., Linear, elementwise activation, Unflatten(1, (C, H,
        W))] as written (no hooks, no parametrized weights) and the stack's first weight is NHWC."""
        linear, activation, unflatten, stack = self[-4], self[-3], self[-2], self[-1]
        return (isinstance(stack, DeconvStack) and len(stack) > 0 and is_nhwc(stack[0].weight)
                and type(linear) is nn.Linear and isinstance(activation, ELEMENTWISE)
                and isinstance(unflatten, nn.Unflatten) and unflatten.dim == 1
                and len(unflatten.unflattened_size) == 3
                and all(runs_as_written(m) for m in (linear, activation, unflatten)))
