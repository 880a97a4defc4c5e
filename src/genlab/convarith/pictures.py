"""Pictures of convolution arithmetic: an image through a conv and its transpose, and sliding-kernel animations,
drawn and written as `genlab convarith demo` and `animate` write them.

The animations follow the style of Dumoulin & Visin's figures: blue input cells (padding dashed, inserted
zeros lighter), cyan output cells, the kernel's footprint and the current output cell drawn darker.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor

from genlab.convarith.arithmetic import (
    ConvArithError,
    as_int,
    conv_output_size,
    conv_size_1d,
    layout,
    matching_output_padding,
    transposed_as_conv,
    transposed_relationship,
)
from genlab.images import (
    GridLabels,
    LabelledGrid,
    labelled_grid,
    load_image,
    make_grid,
    pil_to_tensor,
    save_gif,
    save_png,
)

MAX_FRAMES, MAX_GRID = 400, 40  # an animation is for a small example; 20x20 outputs already make a long GIF


def demo_weight(kind: str, channels: int, k: int) -> Tensor:
    """(C, C, k, k) float64 acting on each channel alone: 'blur' is a k x k mean, 'edge' is centre minus mean."""
    kernel = torch.full((k, k), 1 / (k * k), dtype=torch.float64)
    if kind == "edge":
        kernel = -kernel
        kernel[k // 2, k // 2] += 1
    return torch.eye(channels, dtype=torch.float64)[:, :, None, None] * kernel


def on_canvas(image: Tensor, height: int, width: int, fill: float = 0.85) -> Tensor:
    """Centre a small (C, h, w) image on a (C, height, width) gray canvas, keeping its true size."""
    canvas = torch.full((image.shape[0], height, width), fill, dtype=image.dtype)
    top, left = (height - image.shape[1]) // 2, (width - image.shape[2]) // 2
    canvas[:, top:top + image.shape[1], left:left + image.shape[2]] = image
    return canvas


def signed_to_gray(v: Tensor) -> Tensor:
    """Signed responses -> [0, 1]: 0 is mid-gray, the 99th percentile of |v| is black or white."""
    scale = v.abs().flatten().quantile(0.99).clamp_min(1e-12)
    return (0.5 + v / (2 * scale)).clamp(0, 1)


def conv_demo(image: Tensor, k: int = 3, s: int = 2, p: int = 1) -> Tensor:
    """(C, H, W) in [0, 1] -> a (C, H'', W'') grid: rows blur / edge; original, conv (true size), transposed conv."""
    return make_grid(demo_panels(image, k, s, p), nrow=3)


def conv_demo_figure(image: Tensor, k: int = 3, s: int = 2, p: int = 1, zoom: int | None = None) -> LabelledGrid:
    """`conv_demo` with its rows, columns and settings written around it, about 600 pixels wide unless zoomed."""
    height, width = image.shape[-2:]
    out_h, out_w = (conv_output_size(n, k, s, p) for n in (height, width))
    labels = GridLabels(columns=["original", f"conv ({out_h}x{out_w}, true size)", "transposed conv, same kernel"],
                        rows=["box blur", "edge"], title=f"Conv k={k} s={s} p={p} and its transpose on a "
                                                         f"{height}x{width} image")
    return labelled_grid(demo_panels(image, k, s, p), 3, labels, zoom)


def demo_panels(image: Tensor, k: int, s: int, p: int) -> Tensor:
    """The six pictures of `conv_demo`, (6, C, H, W) in [0, 1], row by row.

    The transposed convolution uses the same kernel and the matching output padding, so it returns H x W; blur
    results are multiplied by s^2 (each output pixel collects about 1/s^2 of the kernel); edges map 0 to gray.
    """
    if image.dim() != 3:
        raise ConvArithError(f"conv_demo needs one (C, H, W) image, got shape {tuple(image.shape)}")
    x = image.to(torch.float64)[None]
    height, width = x.shape[-2:]
    a = matching_output_padding((height, width), k, s, p)
    panels = []
    for kind in ("blur", "edge"):
        weight = demo_weight(kind, x.shape[1], k)
        y = F.conv2d(x, weight, stride=s, padding=p)
        back = transposed_as_conv(y, weight, s, p, a)
        shown = [y[0], back[0] * s * s] if kind == "blur" else [signed_to_gray(v[0]) for v in (y, back)]
        panels += [x[0], on_canvas(shown[0], height, width), shown[1]]
    return torch.stack(panels).clamp(0, 1).float()


def write_demo(image_path: str | os.PathLike, out: str | os.PathLike, size: int = 128, k: int = 3, s: int = 2,
               p: int = 1, zoom: int | None = None) -> Path:
    """Read a PNG/JPEG centre-cropped to size x size, write its `conv_demo_figure` as a PNG at out; the path."""
    image = load_image(image_path, size=size).float() / 255
    return save_png(conv_demo_figure(image, k, s, p, zoom).image, out)


INPUT, INPUT_DARK = (96, 156, 222), (24, 70, 150)
PAD, PAD_DARK, ZERO, ZERO_DARK = (255, 255, 255), (150, 170, 205), (214, 228, 246), (118, 148, 200)
OUTPUT, OUTPUT_DARK, LINE, TEXT = (112, 214, 214), (0, 128, 140), (60, 90, 140), (20, 20, 20)


def dashed_box(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], color: tuple, dash: int = 3) -> None:
    """A rectangle outline drawn in dashes (padding cells in the guide's animations)."""
    x0, y0, x1, y1 = box
    for t in range(0, max(x1 - x0, y1 - y0), 2 * dash):
        for line in (((x0 + t, y0), (min(x0 + t + dash, x1), y0)), ((x0 + t, y1), (min(x0 + t + dash, x1), y1)),
                     ((x0, y0 + t), (x0, min(y0 + t + dash, y1))), ((x1, y0 + t), (x1, min(y0 + t + dash, y1)))):
            if line[0][0] <= x1 and line[0][1] <= y1:
                draw.line(line, fill=color)


def draw_cell(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], kind: str, lit: bool) -> None:
    """One input cell: blue unit, dashed padding or pale inserted zero; darker where the kernel is."""
    fill = {"x": (INPUT, INPUT_DARK), ".": (PAD, PAD_DARK), "0": (ZERO, ZERO_DARK)}[kind][lit]
    draw.rectangle(box, fill=fill, outline=None if kind == "." else LINE)
    if kind == ".":
        dashed_box(draw, box, LINE)
    elif kind == "0":
        cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
        draw.ellipse((cx - 2, cy - 2, cx + 2, cy + 2), fill=LINE)


def draw_frame(grid: list[list[str]], taps: set[tuple[int, int]], out_size: int, current: tuple[int, int],
               title: list[str], cell: int = 20) -> Tensor:
    """One frame, uint8 (3, H, W): the input grid with the kernel's taps lit, the output with the current cell."""
    n, top, gap = len(grid), 8 + 12 * len(title), 2 * cell
    text_width = max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text) for text in title)
    size = (max(8 + n * cell + gap + out_size * cell, int(text_width) + 8) + 8, top + max(n, out_size) * cell + 8)
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for line, text in enumerate(title):
        draw.text((8, 4 + 12 * line), text, fill=TEXT)

    def box(left: int, top: int, r: int, c: int) -> tuple[int, int, int, int]:
        return left + c * cell, top + r * cell, left + (c + 1) * cell - 1, top + (r + 1) * cell - 1
    for r, row in enumerate(grid):
        for c, kind in enumerate(row):
            draw_cell(draw, box(8, top, r, c), kind, (r, c) in taps)
    left, out_top = 8 + n * cell + gap, top + (max(n, out_size) - out_size) * cell // 2
    for r in range(out_size):
        for c in range(out_size):
            draw.rectangle(box(left, out_top, r, c), fill=OUTPUT_DARK if (r, c) == current else OUTPUT, outline=LINE)
    return pil_to_tensor(image, 3)


def slide_frames(grid: list[list[str]], k: int, s: int, d: int, o: int, title: list[str]) -> list[Tensor]:
    """One frame per output cell, row by row: the kernel's taps at (r s + a d, c s + b d) of the grid."""
    if o * o > MAX_FRAMES or len(grid) > MAX_GRID:
        raise ConvArithError(f"animation too large: a {len(grid)}x{len(grid)} grid and a {o}x{o} output ({o * o} "
                             f"frames); at most {MAX_GRID}x{MAX_GRID} and {MAX_FRAMES} frames: animate a smaller one")
    return [draw_frame(grid, {(r * s + a * d, c * s + b * d) for a in range(k) for b in range(k)}, o, (r, c), title)
            for r in range(o) for c in range(o)]


def conv_frames(i: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> list[Tensor]:
    """Frames of a convolution: the kernel over the padded input (blue, dashed padding), the output in cyan."""
    i, k, s, p, d = (as_int(v, n) for v, n in zip((i, k, s, p, d), "ikspd", strict=True))
    o = conv_size_1d(i, k, s, p, d)
    title = [f"convolution: i={i} k={k} s={s} p={p}" + (f" d={d}" if d > 1 else "") + f" -> o={o}"]
    return slide_frames(layout("conv", i, k, s, p), k, s, d, o, title)


def transposed_frames(i: int, k: int, s: int = 1, p: int = 0, output_padding: int = 0, d: int = 1) -> list[Tensor]:
    """Frames of a transposed convolution as its stride-1 direct convolution: dotted cells are inserted zeros."""
    rel = transposed_relationship(i, k, s, p, output_padding, d)
    title = [f"transposed: i'={i} k={k} s={s} p={p} a={rel.output_padding}" + (f" d={d}" if d > 1 else "")
             + f" -> o'={rel.output_size}",
             f"= stride-1 conv: {rel.zeros_between} zero{'' if rel.zeros_between == 1 else 's'} between inputs, "
             f"p'={rel.p_prime}" + (f" (+{rel.extra_padding} bottom/right)" if rel.extra_padding else "")]
    grid = layout("transposed", rel.i, rel.k, rel.s, rel.p, rel.output_padding, rel.d)
    return slide_frames(grid, rel.k, 1, rel.d, rel.output_size, title)


@dataclass(frozen=True)
class Animation:
    """One sliding-kernel animation and the GIF file name it is written under."""

    name: str  # e.g. "conv-i5-k3-s2-p1.gif" or "transposed-i5-k3-s2-p1-a0.gif"
    frames: list[Tensor]  # uint8 (3, H, W), one per output cell


def conv_and_transposed_animations(i: int, k: int, s: int = 1, p: int = 0, output_padding: int | None = None,
                                   d: int = 1) -> tuple[Animation, Animation]:
    """A convolution's animation and its transpose's (input o, output padding a: by default the one that returns
    size i), both drawn, so every rule is checked, before anything is written."""
    o = conv_output_size(i, k, s, p, d)  # checks the numbers first
    a = matching_output_padding(i, k, s, p, d) if output_padding is None else output_padding
    name = f"i{i}-k{k}-s{s}-p{p}" + (f"-d{d}" if d > 1 else "")
    return (Animation(f"conv-{name}.gif", conv_frames(i, k, s, p, d)),
            Animation(f"transposed-{name}-a{a}.gif", transposed_frames(o, k, s, p, a, d)))


def write_animations(out_dir: str | os.PathLike, i: int, k: int, s: int = 1, p: int = 0,
                     output_padding: int | None = None, d: int = 1, frame_ms: int = 500) -> list[Path]:
    """Write the conv and transposed-conv GIFs (frame_ms per frame) into out_dir, their paths; an invalid
    transpose writes neither."""
    animations = conv_and_transposed_animations(i, k, s, p, output_padding, d)
    return [save_gif(animation.frames, Path(out_dir) / animation.name, frame_ms) for animation in animations]
