"""Convolution arithmetic made checkable: a convolution is a sparse matrix C, its transposed convolution is C^T.

Sizes follow Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016), with dilation d
and PyTorch's output padding a:   o = floor((i + 2p - d(k - 1) - 1) / s) + 1,   o' = s(i' - 1) + d(k - 1) - 2p + a + 1.
Every size argument is an int or an (h, w) pair; weights are laid out as for conv2d: (out_ch, in_ch, kh, kw).
"""
from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.errors import ConfigError

Size = int | tuple[int, int]
NAMES = {"i": "input size i", "k": "kernel size k", "s": "stride s", "p": "padding p", "a": "output padding a",
         "d": "dilation d"}


class ConvArithError(ConfigError, ValueError):
    """An impossible (transposed) convolution; a ValueError for the API, a one-line ConfigError for the CLI."""


# --- sizes and the rules they obey ------------------------------------------------------------------------------

def as_pair(value: Size, name: str) -> tuple[int, int]:
    """An int or an (h, w) pair of ints -> (h, w)."""
    pair = tuple(value) if isinstance(value, (tuple, list, torch.Size)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair):
        raise ConvArithError(f"{NAMES.get(name, name)} must be an int or an (h, w) pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def as_int(value: int, name: str) -> int:
    """One int (a square size); an (n, n) pair is accepted, an (h, w) pair with h != w is not."""
    h, w = as_pair(value, name)
    if h != w:
        raise ConvArithError(f"{NAMES[name]} must be one int here (square sizes only), got {value!r}")
    return h


def per_axis(rule: Callable[..., int], **args: Size) -> Size:
    """Apply a one-axis rule to each axis: all ints in -> int out, any pair in -> (h, w) out."""
    pairs = {name: as_pair(value, name) for name, value in args.items()}
    if not any(isinstance(value, (tuple, list, torch.Size)) for value in args.values()):
        return rule(**{name: h for name, (h, _) in pairs.items()})
    sizes = []
    for axis, axis_name in enumerate(("height", "width")):
        try:
            sizes.append(rule(**{name: pair[axis] for name, pair in pairs.items()}))
        except ConvArithError as e:
            raise ConvArithError(f"along the {axis_name}: {e}") from None
    return sizes[0], sizes[1]


def check_positive(**values: int) -> None:
    """Sizes, kernel sizes, strides and dilations count pixels or steps, so each must be >= 1."""
    for name, value in values.items():
        if value < 1:
            raise ConvArithError(f"non-positive {NAMES[name]}={value}: sizes, kernel sizes, strides and dilations "
                                 f"must be >= 1")


def check_padding(p: int) -> None:
    """Padding adds zeros; it cannot remove pixels."""
    if p < 0:
        raise ConvArithError(f"negative padding p={p}: padding must be >= 0 (it adds zero rows and columns); "
                             f"to crop, slice the input instead")


def conv_size_1d(i: int, k: int, s: int, p: int, d: int) -> int:
    """o = floor((i + 2p - d(k - 1) - 1) / s) + 1 along one axis, after checking every rule."""
    check_positive(i=i, k=k, s=s, d=d)
    check_padding(p)
    span = d * (k - 1) + 1
    if span > i + 2 * p:
        raise ConvArithError(f"kernel larger than the padded input: the dilated kernel spans d(k - 1) + 1 = {span} "
                             f"pixels but the padded input has i + 2p = {i + 2 * p}; use a smaller kernel or "
                             f"dilation, or more padding")
    return (i + 2 * p - span) // s + 1


def transposed_size_1d(i: int, k: int, s: int, p: int, a: int, d: int) -> int:
    """o' = s(i' - 1) + d(k - 1) - 2p + a + 1 along one axis, after checking every rule (PyTorch's included)."""
    check_positive(i=i, k=k, s=s, d=d)
    check_padding(p)
    if a < 0 or a >= max(s, d):
        raise ConvArithError(f"output padding a={a} breaks the rule: output padding must be >= 0 and smaller than "
                             f"either stride or dilation (s={s}, d={d}); it only restores the last rows a strided "
                             f"convolution skipped, so use 0 <= a < {max(s, d)}")
    o = s * (i - 1) + d * (k - 1) - 2 * p + a + 1
    if o < 1:
        raise ConvArithError(f"kernel larger than the padded input of the equivalent direct convolution: "
                             f"o' = s(i' - 1) + d(k - 1) - 2p + a + 1 = {o} < 1, the padding crops everything; "
                             f"use p <= {(s * (i - 1) + d * (k - 1) + a) // 2}")
    return o


def conv_output_size(i: Size, k: Size, s: Size = 1, p: Size = 0, d: Size = 1) -> Size:
    """Convolution output size o = floor((i + 2p - d(k - 1) - 1) / s) + 1; pairs give (h, w)."""
    return per_axis(conv_size_1d, i=i, k=k, s=s, p=p, d=d)


def transposed_output_size(i: Size, k: Size, s: Size = 1, p: Size = 0, output_padding: Size = 0,
                           d: Size = 1) -> Size:
    """Transposed-convolution output size o' = s(i' - 1) + d(k - 1) - 2p + a + 1 (a = output padding)."""
    return per_axis(transposed_size_1d, i=i, k=k, s=s, p=p, a=output_padding, d=d)


def matching_output_padding(i: Size, k: Size, s: Size = 1, p: Size = 0, d: Size = 1) -> Size:
    """a = (i + 2p - d(k - 1) - 1) mod s: the rows the convolution's floor dropped, so the transpose returns size i."""
    def rule(i: int, k: int, s: int, p: int, d: int) -> int:
        conv_size_1d(i, k, s, p, d)
        return (i + 2 * p - d * (k - 1) - 1) % s
    return per_axis(rule, i=i, k=k, s=s, p=p, d=d)


# --- the convolution as a matrix -----------------------------------------------------------------------------------

def check_weight(weight: Tensor) -> None:
    """weight must be laid out as for conv2d: (out_ch, in_ch, kh, kw)."""
    if weight.dim() != 4 or weight.numel() == 0:
        raise ConvArithError(f"weight must be a non-empty 4-D tensor (out_ch, in_ch, kh, kw) as for conv2d, "
                             f"got shape {tuple(weight.shape)}")


def check_batch(x: Tensor, channels: int, role: str) -> None:
    """x must be (N, channels, H, W): the channel count is fixed by the weight."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise ConvArithError(f"channel mismatch: the weight expects {role} of shape (N, {channels}, H, W), "
                             f"got {tuple(x.shape)}")


def conv_matrix(weight: Tensor, input_size: Size, stride: Size = 1, padding: Size = 0, dilation: Size = 1) -> Tensor:
    """Sparse COO C, (out_ch*oh*ow, in_ch*h*w), with C @ x.flatten() == conv2d(x, weight, ...).flatten().

    C.t() @ y.flatten() == conv_transpose2d(y, weight, ...) with output padding matching_output_padding(...).
    Taps that land on padding are simply absent; call .to_dense() for a dense view.
    """
    check_weight(weight)
    out_ch, in_ch, kh, kw = weight.shape
    (h, w), (sh, sw), (ph, pw), (dh, dw) = (as_pair(v, n) for v, n in
                                            ((input_size, "i"), (stride, "s"), (padding, "p"), (dilation, "d")))
    oh, ow = conv_output_size((h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    # one candidate entry per (out channel, out row, out col, in channel, tap row, tap col)
    o, r, c, ci, a, b = torch.meshgrid(*(torch.arange(n) for n in (out_ch, oh, ow, in_ch, kh, kw)), indexing="ij")
    y, x = r * sh - ph + a * dh, c * sw - pw + b * dw  # the input pixel each tap reads
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    rows = ((o * oh + r) * ow + c)[inside]
    cols = ((ci * h + y) * w + x)[inside]
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), weight[o, ci, a, b][inside],
                                   (out_ch * oh * ow, in_ch * h * w), check_invariants=True).coalesce()


def conv_by_matrix(x: Tensor, weight: Tensor, stride: Size = 1, padding: Size = 0, dilation: Size = 1) -> Tensor:
    """conv2d as C @ x: (N, in_ch, H, W) -> (N, out_ch, oh, ow)."""
    check_weight(weight)
    check_batch(x, weight.shape[1], "an input")
    matrix = conv_matrix(weight, tuple(x.shape[-2:]), stride, padding, dilation)
    oh, ow = conv_output_size(tuple(x.shape[-2:]), tuple(weight.shape[-2:]), stride, padding, dilation)
    return (matrix @ x.reshape(len(x), -1).T).T.reshape(len(x), weight.shape[0], oh, ow)


def transposed_by_matrix(y: Tensor, weight: Tensor, input_size: Size, stride: Size = 1, padding: Size = 0,
                         dilation: Size = 1) -> Tensor:
    """conv_transpose2d as C^T @ y, C the convolution of an input_size image: (N, out, oh, ow) -> (N, in, h, w)."""
    check_weight(weight)
    check_batch(y, weight.shape[0], "a transposed-convolution input")
    h, w = as_pair(input_size, "i")
    matrix = conv_matrix(weight, (h, w), stride, padding, dilation)
    if matrix.shape[0] != y[0].numel():
        raise ConvArithError(f"size mismatch: a convolution of a {h}x{w} input gives {matrix.shape[0]} outputs, "
                             f"but y holds {y[0].numel()} per image")
    return (matrix.t() @ y.reshape(len(y), -1).T).T.reshape(len(y), weight.shape[1], h, w)


# --- the transposed convolution as a direct convolution ----------------------------------------------------------

def insert_zeros(y: Tensor, stride: Size) -> Tensor:
    """(N, C, H, W) -> (N, C, s(H - 1) + 1, s(W - 1) + 1): s - 1 zeros between neighbouring units."""
    sh, sw = as_pair(stride, "s")
    n, c, h, w = y.shape
    stretched = y.new_zeros(n, c, sh * (h - 1) + 1, sw * (w - 1) + 1)
    stretched[:, :, ::sh, ::sw] = y
    return stretched


def transposed_as_conv(y: Tensor, weight: Tensor, stride: Size = 1, padding: Size = 0, output_padding: Size = 0,
                       dilation: Size = 1) -> Tensor:
    """conv_transpose2d(y, weight, ...) as a stride-1 conv2d: (N, out_ch, H', W') -> (N, in_ch, oh', ow').

    Insert s - 1 zeros between inputs, pad d(k - 1) - p on each side plus a on the bottom/right (negative: crop),
    flip the kernel spatially and swap its in/out channels.
    """
    check_weight(weight)
    check_batch(y, weight.shape[0], "a transposed-convolution input")
    kernel = tuple(weight.shape[-2:])
    transposed_output_size(tuple(y.shape[-2:]), kernel, stride, padding, output_padding, dilation)  # every rule
    (ph, pw), (ah, aw), (dh, dw) = as_pair(padding, "p"), as_pair(output_padding, "a"), as_pair(dilation, "d")
    qh, qw = dh * (kernel[0] - 1) - ph, dw * (kernel[1] - 1) - pw
    padded = F.pad(insert_zeros(y, stride), (qw, qw + aw, qh, qh + ah))  # F.pad crops where q is negative
    return F.conv2d(padded, weight.flip(-2, -1).transpose(0, 1), dilation=(dh, dw))


@dataclasses.dataclass(frozen=True)
class TransposedRelationship:
    """Which textbook case a transposed convolution is, and the stride-1 direct convolution that computes it."""

    name: str            # e.g. "zero padding, non-unit strides, with output padding"
    i: int               # i', the transposed convolution's input size
    k: int
    s: int
    p: int
    output_padding: int  # a
    d: int
    output_size: int     # o'
    formula: str         # the size formula with the numbers filled in
    zeros_between: int   # s - 1 zeros inserted between neighbouring input units
    k_prime: int         # k' = k, the kernel flipped and its in/out channels swapped
    s_prime: int         # s' = 1
    p_prime: int         # p' = d(k - 1) - p zeros on each side (negative: that many rows cropped)
    extra_padding: int   # a more zeros on the bottom/right
    direct_input_size: int  # s(i' - 1) + 1 + 2p' + a: what the direct convolution slides over


def relationship_name(k: int, s: int, p: int, a: int, d: int) -> str:
    """The case in the guide's terms; half and full padding use the dilated span d(k - 1) + 1."""
    span = d * (k - 1) + 1
    if s > 1:
        name = "no zero padding, non-unit strides" if p == 0 else "zero padding, non-unit strides"
    elif p == 0:
        name = "no zero padding, unit strides"
    elif span % 2 == 1 and p == span // 2:
        name = "half padding"
    elif p == span - 1:
        name = "full padding"
    else:
        name = "zero padding, unit strides"
    return name + (", with output padding" if a else "") + (f", dilation {d}" if d > 1 else "")


def size_formula(i: int, k: int, s: int, p: int, a: int, d: int, o: int) -> str:
    """The output-size formula in the guide's form, then with numbers, then its value."""
    if s == 1:
        head = ("i' + (k - 1)", f"{i} + ({k} - 1)") if d == 1 else ("i' + d(k - 1)", f"{i} + {d}({k} - 1)")
    else:
        kernel = ("k", f"{k}") if d == 1 else ("d(k - 1) + 1", f"{d}({k} - 1) + 1")
        head = (f"s(i' - 1) + {kernel[0]}", f"{s}({i} - 1) + {kernel[1]}")
    tail = (" - 2p + a", f" - 2*{p} + {a}") if a else (" - 2p", f" - 2*{p}")
    return f"o' = {head[0]}{tail[0]} = {head[1]}{tail[1]} = {o}"


def transposed_relationship(i: int, k: int, s: int = 1, p: int = 0, output_padding: int = 0,
                            d: int = 1) -> TransposedRelationship:
    """The case, the size formula and the equivalent direct convolution of a transposed convolution (ints)."""
    i, k, s, p, a, d = (as_int(v, n) for v, n in zip((i, k, s, p, output_padding, d), "ikspad", strict=True))
    o = transposed_size_1d(i, k, s, p, a, d)
    p_prime = d * (k - 1) - p
    return TransposedRelationship(relationship_name(k, s, p, a, d), i, k, s, p, a, d, o,
                                  size_formula(i, k, s, p, a, d, o), s - 1, k, 1, p_prime, a,
                                  s * (i - 1) + 1 + 2 * p_prime + a)


# --- what a (transposed) convolution slides over -----------------------------------------------------------------

def layout_1d(kind: str, i: int, k: int, s: int, p: int, a: int, d: int) -> list[str]:
    """What a (transposed) convolution slides over along one axis: 'x' input, '0' inserted zero, '.' padding."""
    if kind == "conv":
        return ["."] * p + ["x"] * i + ["."] * p
    q = d * (k - 1) - p
    stretched = ["0" if j % s else "x" for j in range(s * (i - 1) + 1)]
    stretched = stretched[max(-q, 0):len(stretched) - max(-(q + a), 0)]  # negative padding crops
    return ["."] * max(q, 0) + stretched + ["."] * max(q + a, 0)


def layout(kind: str, i: int, k: int, s: int, p: int, a: int = 0, d: int = 1) -> list[list[str]]:
    """The 2-D grid of layout_1d kinds: padding wins, then inserted zeros, then input units."""
    axis = layout_1d(kind, i, k, s, p, a, d)
    return [["." if "." in (u, v) else "0" if "0" in (u, v) else "x" for v in axis] for u in axis]
