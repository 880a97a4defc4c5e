"""The plots of a run: its metrics as PNG bytes (loss curves per part and split, a GAN's discriminator outputs, and
what those outputs say about the game) and its test codes as a latent scatter. Drawn on a private matplotlib Figure
with the Agg canvas: no pyplot state. The report, the figures and the benchmarks use them."""
from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from genlab.latent import pca_2d

CURVE_DPI = 200  # drawn at twice the 100-dpi layout size, shown at half: sharp on hi-dpi screens
PANELS_PER_ROW = 3
GAN_PARTS = ("d_real", "d_fake")  # a GAN's metrics: D's mean output on real and on generated images
_D_WINS, _D_TIED = 0.95, 0.05  # D(x) above (and D(G(z)) below 1 - ) _D_WINS, or |D(x) - D(G(z))| under _D_TIED


SPLITS = ("train", "val", "test")
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}


def loss_curves_png(metrics: list[dict]) -> bytes:
    """PNG bytes: one panel per loss part (loss, rec, kl, ...), train, validation and test against epoch."""
    parts = _loss_parts(metrics)
    columns = min(len(parts), PANELS_PER_ROW) or 1
    rows = max(1, math.ceil(len(parts) / PANELS_PER_ROW))
    figure = Figure(figsize=(3.2 * columns, 2.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).flat
    for part, ax in zip(parts, axes):  # parts first, so zip takes no axes beyond the last part
        _plot_part(ax, metrics, part, legend=part == parts[0])
    for ax in list(axes):  # the unused cells of the last row
        ax.set_axis_off()
    if not parts:
        figure.axes[0].text(0.5, 0.5, "no completed epochs yet", ha="center", va="center")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CURVE_DPI)
    return buffer.getvalue()


def _loss_parts(metrics: list[dict]) -> list[str]:
    """Part names across all epochs and splits: "loss" first, then in order of appearance."""
    names: dict[str, None] = {}
    for row in metrics:
        for split in SPLITS:
            if isinstance(row.get(split), dict):
                names.update(dict.fromkeys(row[split]))
    if all(part in names for part in GAN_PARTS):  # a GAN: its two losses; D's outputs have their own figure
        return [name for name in names if name not in ("loss", *GAN_PARTS)]
    return sorted(names, key=lambda name: name != "loss")  # stable: keeps appearance order


def _plot_part(ax, metrics: list[dict], part: str, legend: bool) -> None:
    epochs = [row.get("epoch", index) for index, row in enumerate(metrics, 1)]
    for split, style in zip(SPLITS, ("-", ":", "--")):
        values = np.array([part_value(row.get(split, {}), part) for row in metrics])
        if np.isfinite(values).any():
            ax.plot(epochs, values, style, marker="o", markersize=3, label=split)
    ax.set_title(part)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if legend and ax.lines:
        ax.legend(frameon=False)


def part_value(split_metrics: object, part: str) -> float:
    """The value of one part as a float, NaN where it is missing or not a number."""
    value = split_metrics.get(part) if isinstance(split_metrics, dict) else None
    return float(value) if is_number(value) else math.nan


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def gan_curves_png(metrics: list[dict]) -> bytes:
    """PNG bytes: D(x) and D(G(z)) against epoch, train solid and test dashed, on a 0..1 axis with 0.5 marked."""
    figure = Figure(figsize=(6.4, 2.8), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    epochs = [row.get("epoch", index) for index, row in enumerate(metrics, 1)]
    players = (("d_real", "D(x), real images", "tab:blue"), ("d_fake", "D(G(z)), generated", "tab:red"))
    for part, label, color in players:
        for split, style in (("train", "-"), ("test", "--")):
            values = np.array([part_value(row.get(split, {}), part) for row in metrics])
            if np.isfinite(values).any():
                ax.plot(epochs, values, style, color=color, marker="o", markersize=3, label=f"{label} ({split})")
    ax.axhline(0.5, color="gray", linewidth=0.8, linestyle=":")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean discriminator output")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CURVE_DPI)
    return buffer.getvalue()


def gan_warning(split_metrics: dict) -> str | None:
    """A sentence when D's outputs show a collapsed discriminator or generator, None when they look healthy."""
    real, fake = split_metrics.get("d_real"), split_metrics.get("d_fake")
    if not (is_number(real) and is_number(fake)):
        return None
    if real > _D_WINS and fake < 1 - _D_WINS:
        return (f"The discriminator wins outright (D(x) {real:.3f}, D(G(z)) {fake:.3f}): the generator gets almost "
                f"no gradient and its samples have likely collapsed to a few shapes or to noise. Train again with "
                f"another --seed or a lower --lr.")
    if abs(real - fake) < _D_TIED and not 0.35 < real < 0.65:
        return (f"The discriminator has collapsed: it gives real and generated images the same output (D(x) "
                f"{real:.3f}, D(G(z)) {fake:.3f}) far from 0.5, so it no longer tells them apart and the generator "
                f"learns nothing from it. Train again with another --seed or a lower --lr.")
    return None


# ---------------------------------------------------------------- the latent scatter


def latent_scatter(codes: Tensor, labels: Tensor, class_names: Sequence[str], title: str = "") -> Tensor:
    """Codes (N, D) coloured by label as a PNG-ready RGB plot, uint8 (3, H, W); PCA to 2-D when D > 2."""
    points, explained = pca_2d(codes.cpu())
    figure = Figure(figsize=(7.5, 6), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    colours = figure_colours(len(class_names))
    for label, name in enumerate(class_names):
        chosen = labels.cpu() == label
        ax.scatter(points[chosen, 0].numpy(), points[chosen, 1].numpy(), s=3, alpha=0.5, color=colours[label],
                   label=name, rasterized=True)
    axis_names = scatter_axis_names(codes.shape[1], explained)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(title)
    ax.legend(markerscale=5, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.canvas.draw()
    rgba = np.asarray(figure.canvas.buffer_rgba())
    return torch.from_numpy(rgba[:, :, :3].copy()).permute(2, 0, 1).contiguous()


def figure_colours(n: int) -> list:
    """n distinct colours: tab10 up to 10 classes, then evenly spaced hues."""
    colormap = colormaps["tab10" if n <= 10 else "hsv"]
    return [colormap(i if n <= 10 else i / n) for i in range(n)]


def scatter_axis_names(latent_dim: int, explained: Tensor) -> tuple[str, str]:
    """The scatter's axis labels: z[0] and z[1] for a 2-D latent, else the principal axes and their variance."""
    if latent_dim == 2:
        return "z[0] (posterior mean)", "z[1] (posterior mean)"
    return tuple(f"principal axis {i + 1} ({100 * float(e):.0f}% of the variance)"  # type: ignore[return-value]
                 for i, e in enumerate(explained))
