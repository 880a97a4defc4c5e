"""The sections of the HTML run report, each an HTML string: header, summary, loss curves, evaluation, samples,
reconstructions, figures, explorer, how to reproduce, and config, from a run directory.

Every image is a base64 data: URI, so the page stays self-contained. The plots come from genlab.plots;
genlab.report.page puts the sections into the page.
"""
from __future__ import annotations

import base64
import html
import io
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from genlab.errors import GenlabError
from genlab.figures import EPOCH_ROWS, evenly_spaced, read_caption
from genlab.images import GridLabels, labelled_grid, open_image, pil_to_tensor, to_pil
from genlab.models.contract import Decoder
from genlab.models.registry import MODELS
from genlab.plots import (
    CURVE_DPI,
    GAN_PARTS,
    SPLIT_NAMES,
    SPLITS,
    gan_curves_png,
    gan_warning,
    is_number,
    loss_curves_png,
)
from genlab.runs import layout
from genlab.runs.layout import RunLayout, parse_epoch_image
from genlab.runs.record import RunRecord
from genlab.tables import evaluation_rows

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_RECON_GRIDS = 12
_SAMPLES_WIDTH = 960  # target display widths in CSS pixels
_RECON_WIDTH = 720
_FIGURE_WIDTH = 960
_MAX_GRID_PIXELS = 4096 * 4096  # a per-epoch samples grid read back for the report; larger is not the trainer's
_SAMPLE_ROWS = 8  # the trainer's per-epoch samples: 64 from fixed noise, 8 to a row, 2-pixel padding


# ---------------------------------------------------------------- the run's images


@dataclass(frozen=True)
class RunImages:
    """A run's PNGs sorted into the trainer's per-epoch reconstructions and samples, and every other figure."""

    recon: list[tuple[int, Path]]  # (epoch, path), sorted by epoch
    samples: list[tuple[int, Path]]
    figures: list[Path]  # every other PNG of the run's images


def find_images(run_dir: Path) -> RunImages:
    """The PNGs under the run's images folder, sorted into kinds; none when the folder is missing."""
    images_dir = RunLayout(run_dir).images
    found: dict[str, list] = {"recon": [], "samples": [], "figures": []}
    paths = sorted(images_dir.rglob("*.png")) if images_dir.is_dir() else []
    for path in paths:
        epoch_image = parse_epoch_image(path.relative_to(images_dir).as_posix())
        if epoch_image is None:
            found["figures"].append(path)
        else:
            kind, epoch = epoch_image
            found[kind].append((epoch, path))
    return RunImages(sorted(found["recon"]), sorted(found["samples"]), found["figures"])


# ---------------------------------------------------------------- images as HTML


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the PNG header, or None if data is not a PNG."""
    if len(data) < 24 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _img_tag(data: bytes, alt: str, width: int, height: int, pixelated: bool) -> str:
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    css_class = ' class="pixels"' if pixelated else ""
    return f'<img src="{uri}" alt="{html.escape(alt)}" width="{width}" height="{height}"{css_class}>'


def _pixel_img(path: Path, alt: str, target_width: int) -> str:
    """An <img> for a PNG of pixels, scaled up by a whole factor to about target_width."""
    try:
        data = path.read_bytes()
    except OSError as err:
        return f'<p class="warn">{html.escape(f"{path.name} could not be read ({err}).")}</p>'
    size = _png_size(data)
    if size is None:
        return f'<p class="warn">{html.escape(path.name)} is not a valid PNG; skipped.</p>'
    scale = max(1, target_width // max(size[0], 1))
    return _img_tag(data, alt, size[0] * scale, size[1] * scale, pixelated=scale > 1)


# ---------------------------------------------------------------- page sections


def _format_number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.4g}"
    return str(value)


def _loss_text(split_metrics: dict) -> str:
    """'270.1 (rec 250.3, kl 19.8)': the total, then its parts."""
    parts = [f"{name} {_format_number(value)}" for name, value in split_metrics.items() if name != "loss"]
    if "loss" not in split_metrics:
        return ", ".join(parts)
    total = _format_number(split_metrics["loss"])
    return f"{total} ({', '.join(parts)})" if parts else total


def dataset_name(config: dict) -> str:
    """The data's name as the record gives it, 'unknown data' when it gives none."""
    data = config.get("data")
    name = data.get("name") if isinstance(data, dict) else data
    return str(name) if name else "unknown data"


def header_html(run_dir: Path, config: dict) -> str:
    """The page's heading: model on data, then the run's name, when it was made and by which genlab."""
    model = str(config.get("model", "unknown model"))
    versions = config.get("versions") if isinstance(config.get("versions"), dict) else {}
    details = [f"run <code>{html.escape(run_dir.name)}</code>"]
    if config.get("created"):
        details.append(f"created {html.escape(str(config['created']))}")
    if versions.get("genlab"):
        details.append(f"genlab {html.escape(str(versions['genlab']))}")
    title = f"{html.escape(model)} on {html.escape(dataset_name(config))}"
    return f'<header><h1>{title}</h1><p class="sub">{" · ".join(details)}</p></header>'


def summary_html(metrics: list[dict], config: dict) -> str:
    """One line on the last epoch: its losses per split (a GAN's D outputs), warm-up, early stopping, speed."""
    if not metrics:
        return ('<p class="summary">This run has no completed epochs yet: the trainer adds a line '
                f"to {layout.METRICS} at the end of each epoch. Write the report again later.</p>")
    last = metrics[-1]
    planned = config.get("train", {}).get("epochs") if isinstance(config.get("train"), dict) else None
    epoch = f"Epoch {last.get('epoch', len(metrics))}" + (f" of {planned}" if planned else "")
    pieces = [epoch + (f" (step {last['step']:,})" if isinstance(last.get("step"), int) else "")]
    for split in SPLITS:
        if isinstance(last.get(split), dict) and last[split]:
            gan = _is_gan([last])
            text = _gan_text(last[split]) if gan else f"loss {_loss_text(last[split])}"
            eval_mode = " (D in evaluation mode, see Discriminator outputs)" if gan and split != "train" else ""
            pieces.append(f"{SPLIT_NAMES[split]}{eval_mode} {text}")
    pieces += _controls_text(last)
    seconds = [row["epoch_seconds"] for row in metrics if isinstance(row.get("epoch_seconds"), (int, float))]
    if seconds:
        pieces.append(f"{sum(seconds) / len(seconds):.2f} s per epoch on average")
    return f'<p class="summary">{html.escape(" · ".join(pieces))}</p>'


# why a GAN's test figures differ from its training ones, said wherever they are shown
_GAN_EVAL_NOTE = ("Dashed: the test set, with D in evaluation mode: its batch norm then uses running statistics "
                  "averaged over past batches, which trail a generator that keeps changing, so test D(x) can sit far "
                  "below the training figure, even near 0, in a run that trains well. Judge the game by the training "
                  "figures and the samples.")


def _is_gan(metrics: list[dict]) -> bool:
    """Metrics with D's outputs on real and generated images: a GAN's."""
    return any(isinstance(row.get("train"), dict) and all(p in row["train"] for p in GAN_PARTS) for row in metrics)


def _gan_text(split_metrics: dict) -> str:
    """'D(x) 0.712, D(G(z)) 0.281, D loss 1.12, G loss 1.54': a GAN's numbers that mean something alone."""
    names = (("d_real", "D(x)"), ("d_fake", "D(G(z))"), ("d_loss", "D loss"), ("g_loss", "G loss"))
    return ", ".join(f"{label} {_format_number(split_metrics[name])}" for name, label in names
                     if is_number(split_metrics.get(name)))


def _controls_text(last: dict) -> list[str]:
    """KL warm-up and early-stopping state of the last epoch, where the run has them."""
    pieces = []
    if isinstance(last.get("kl_weight"), (int, float)):
        pieces.append(f"KL weight {last['kl_weight']:.2f}")
    if isinstance(last.get("best_epoch"), int):
        pieces.append(f"best validation loss at epoch {last['best_epoch']} (its weights kept as {layout.BEST_WEIGHTS})")
    if last.get("patience_left") == 0:
        pieces.append("stopped early")
    elif isinstance(last.get("patience_left"), int):
        pieces.append(f"early stopping after {last['patience_left']} more epoch(s) without a better one")
    return pieces


def curves_html(metrics: list[dict]) -> str:
    """The loss curves of every part and split; empty before the first epoch."""
    if not metrics:
        return ""
    data = loss_curves_png(metrics)
    width, height = _png_size(data)
    scale = CURVE_DPI // 100
    image = _img_tag(data, "loss curves", width // scale, height // scale, pixelated=False)
    note = "Solid: training set. Dashed: test set. Losses are per image, as the model's loss() reports them."
    if _is_gan(metrics):
        note += " " + _GAN_EVAL_NOTE
    return f'<section><h2>Loss curves</h2><p class="note">{html.escape(note)}</p>{image}</section>'


def gan_html(metrics: list[dict]) -> str:
    """A GAN's D(x) and D(G(z)) against epoch, with a warning when the game has collapsed; empty otherwise."""
    if not _is_gan(metrics):
        return ""
    data = gan_curves_png(metrics)
    width, height = _png_size(data)
    scale = CURVE_DPI // 100
    image = _img_tag(data, "discriminator outputs D(x) and D(G(z))", width // scale, height // scale, pixelated=False)
    note = ("D's mean output on real images, D(x), and on generated ones, D(G(z)), after each epoch. In a healthy "
            "run both stay away from 0 and 1 and D(x) stays above D(G(z)); at the game's equilibrium both are 0.5. "
            "Solid: the training batches, as the players saw them. " + _GAN_EVAL_NOTE)
    warning = gan_warning(metrics[-1].get("train", {}))
    warning_html = f'<p class="warn">{html.escape(warning)}</p>' if warning else ""
    return (f'<section><h2>Discriminator outputs</h2>{warning_html}<p class="note">{html.escape(note)}</p>'
            f"{image}</section>")


def samples_html(images: RunImages) -> str:
    """The last epoch's fixed-noise samples, then their first row after each epoch; empty without samples."""
    if not images.samples:
        return ""
    epoch, path = images.samples[-1]
    image = _pixel_img(path, f"samples after epoch {epoch}", _SAMPLES_WIDTH)
    caption = f"<figcaption>Samples from fixed noise after epoch {epoch}.</figcaption>"
    return f"<section><h2>Samples</h2><figure>{image}{caption}</figure>{_samples_over_epochs_html(images)}</section>"


def _samples_over_epochs_html(images: RunImages) -> str:
    """The first row of each epoch's fixed-noise samples, one row per epoch: how the model learned to draw."""
    shown = evenly_spaced(images.samples, EPOCH_ROWS)
    rows = ((epoch, _first_sample_row(path)) for epoch, path in shown)
    strips = [(epoch, strip) for epoch, strip in rows if strip is not None]
    if len(strips) < 2 or len({tuple(strip.shape) for _, strip in strips}) > 1:
        return ""
    labels = GridLabels(rows=[f"epoch {epoch}" for epoch, _ in strips], title="The same noise, after each epoch")
    grid = labelled_grid(torch.stack([strip for _, strip in strips]), 1, labels)
    buffer = io.BytesIO()
    to_pil(grid.image).save(buffer, format="PNG")
    data = buffer.getvalue()
    width, height = _png_size(data)
    note = "Each row: the first row of the fixed-noise samples after that epoch"
    shown_all = len(strips) == len(images.samples)
    note += "." if shown_all else f" ({len(strips)} of {len(images.samples)} epochs, evenly spaced)."
    return (f'<figure>{_img_tag(data, "samples over epochs", width, height, pixelated=True)}'
            f"<figcaption>{html.escape(note)}</figcaption></figure>")


def _first_sample_row(path: Path) -> Tensor | None:
    """The top row (C, h, W) in [0, 1] of a per-epoch samples grid, None when the file is no such grid."""
    try:
        image = open_image(path, path.name, max_pixels=_MAX_GRID_PIXELS)
    except GenlabError:
        return None
    pixels = pil_to_tensor(image, 3 if image.mode in ("RGB", "RGBA", "P") else 1).float() / 255
    height = pixels.shape[-2]
    if (height - 2) % _SAMPLE_ROWS:
        return None
    return pixels[:, :(height - 2) // _SAMPLE_ROWS + 2]


def recon_html(images: RunImages) -> str:
    """The reconstruction grids of at most _MAX_RECON_GRIDS epochs, evenly spaced; empty without any."""
    if not images.recon:
        return ""
    shown = evenly_spaced(images.recon, _MAX_RECON_GRIDS)
    note = "Each grid: test images above their reconstructions."
    if len(shown) < len(images.recon):
        note += f" Showing {len(shown)} of {len(images.recon)} epochs, evenly spaced."
    rows = "".join(
        f'<div class="epoch">epoch {epoch}</div>'
        + _pixel_img(path, f"reconstructions after epoch {epoch}", _RECON_WIDTH)
        for epoch, path in shown
    )
    return (f'<section><h2>Reconstructions</h2><p class="note">{note}</p>'
            f'<div class="recon">{rows}</div></section>')


def figures_html(run_dir: Path, images: RunImages) -> str:
    """Every other figure of the run (e.g. `genlab explore`'s), under the caption it carries."""
    if not images.figures:
        return ""
    figures = []
    for path in images.figures:
        name = path.relative_to(RunLayout(run_dir).images).as_posix()
        image = _pixel_img(path, name, _FIGURE_WIDTH)
        description = read_caption(path)
        caption = f"{description} ({name})" if description else name
        figures.append(f"<figure>{image}<figcaption>{html.escape(caption)}</figcaption></figure>")
    return f"<section><h2>Figures</h2>{''.join(figures)}</section>"


def evaluation_html(run_dir: Path) -> str:
    """The run's evaluation as a table, a warning when it cannot be read; empty when the run has none."""
    path = RunLayout(run_dir).evaluation
    if not path.is_file():
        return ""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        rows = evaluation_rows(result)
    except (OSError, ValueError, KeyError, TypeError) as err:
        warning = html.escape(f"{path.name} could not be read ({err}); run `genlab evaluate` again.")
        return f'<section><h2>Evaluation</h2><p class="warn">{warning}</p></section>'
    cells = "".join(f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>" for name, value in rows)
    note = f"From {layout.EVALUATION}, written by `genlab evaluate` on {result.get('created', 'an unknown date')}."
    return f'<section><h2>Evaluation</h2><p class="note">{html.escape(note)}</p><table>{cells}</table></section>'


def reproduce_html(config: dict) -> str:
    """The command that made the run and the versions it used, so it can be trained again."""
    command = config.get("command")
    if not command:
        return (f"<section><h2>Reproduce</h2><p>{layout.CONFIG} does not record the command that made this run; "
                "every setting it used is listed below.</p></section>")
    versions = config.get("versions") if isinstance(config.get("versions"), dict) else {}
    pinned = ", ".join(f"{name} {version}" for name, version in versions.items())
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    advice = "Run this command" + (f" with {pinned}" if pinned else "") + " to train the run again"
    advice += f" (it used seed {train['seed']}). " if "seed" in train else ". "
    advice += (f"Every setting is in {layout.CONFIG}, listed in full below; another device or library "
               "version can change the last digits of the losses.")
    return (f"<section><h2>Reproduce</h2><pre>{html.escape(str(command))}</pre>"
            f"<p>{html.escape(advice)}</p></section>")


def explorer_html(run_dir: Path, config: dict) -> str:
    """The command that opens this run in the browser explorer, for models with a latent space."""
    spec = MODELS.get(config.get("model"))
    if spec is None or not issubclass(spec.cls, Decoder):
        return ""
    command = html.escape(f"genlab serve {run_dir}")
    return (f"<section><h2>Explore</h2><p>Move through this model's latent space live in the browser: "
            f"<code>{command}</code>, then open the address it prints.</p></section>")


def _flatten(config: dict, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted key, value) pairs for every leaf of a nested dict."""
    rows: list[tuple[str, object]] = []
    for key, value in config.items():
        if isinstance(value, dict) and value:
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _config_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def config_html(record: RunRecord) -> str:
    """Every setting of the run, leaving out the model options that do not apply to it (an MLP's conv_channels)."""
    unused = {f"model_config.{name}" for name in record.model_config.unused_fields()}
    rows = "".join(
        f"<tr><td>{html.escape(key)}</td><td>{html.escape(_config_value(value))}</td></tr>"
        for key, value in _flatten(record.to_dict()) if key not in unused
    )
    note = (f'<p class="note">Options of {html.escape(record.model)} that this configuration does not use are left '
            f"out: {html.escape(', '.join(sorted(name.split('.', 1)[1] for name in unused)))}.</p>") if unused else ""
    return f"<section><h2>Configuration</h2>{note}<table>{rows}</table></section>"
