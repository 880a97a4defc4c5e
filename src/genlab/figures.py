"""Every labelled figure of a run's latent space: the picture, the sentence that says what it shows, its file name.

`genlab explore` writes them with `save_figure`, which puts the caption in the PNG's Description text; the run
report reads it back with `read_caption`. Grids read like plots, as `genlab.latent` lays them out.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin
from torch import Tensor, nn

from genlab import latent
from genlab.data.batches import to_unit_float
from genlab.data.dataset import Dataset
from genlab.disentanglement import COLLAPSED_KL, CarriedFactor, carried_factors
from genlab.errors import ConfigError, RunError
from genlab.images import (
    GRID_PADDING,
    GridLabels,
    atomic_save,
    labelled_grid,
    load_images_as,
    open_image,
    pil_to_tensor,
    save_image,
    to_pil,
)
from genlab.losses import kl_std_normal
from genlab.models.contract import GAN, VAE, AutoEncoder, Generative, contract_gap
from genlab.nn import module_device
from genlab.options import MAX_DEFAULT_TRAVERSAL_ROWS
from genlab.plots import latent_scatter
from genlab.runs.layout import EPOCH_SAMPLES_PER_ROW, RunLayout
from genlab.runs.store import Run

CAPTION_KEY = "Description"  # the PNG text chunk that carries a figure's caption


@dataclass(frozen=True)
class LabelledFigure:
    """A picture (C, H, W), float in [0, 1] or uint8, with its caption and default file name."""

    image: Tensor
    caption: str
    name: str  # its default file name, e.g. "manifold.png"
    box: tuple[int, int, int, int] | None = None  # where the pictures lie (top, left, height, width); labels around
    note: str = ""  # one line on what was done to the inputs (the user's image files), for the command to print


# ---------------------------------------------------------------- saving and reading


def save_figure(figure: LabelledFigure, run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write an explore figure as a PNG with its caption inside, to `out` or the run's explore folder, where the
    report finds it; returns the path."""
    path = Path(out) if out else RunLayout(run_dir).explore / figure.name
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--out {path} must end in .png: explore writes PNG, with the caption inside it")
    info = PngImagePlugin.PngInfo()
    info.add_text(CAPTION_KEY, figure.caption)
    atomic_save(to_pil(figure.image.cpu()), path, "PNG", pnginfo=info)
    return path


def save_picture(figure: LabelledFigure, run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write a picture of the run (samples, reconstructions) to `out` (PNG or JPEG) or the run's images folder;
    returns the path."""
    return save_image(figure.image, Path(out) if out else RunLayout(run_dir).images / figure.name)


def read_caption(path: str | Path) -> str | None:
    """The caption `save_figure` put in a PNG; None for a PNG without one, or a file that is no readable PNG."""
    try:
        with Image.open(path) as image:
            return image.text.get(CAPTION_KEY) if image.format == "PNG" else None
    except (OSError, ValueError, Image.DecompressionBombError):  # a bomb is not opened, let alone decoded
        return None


def labelled(images: Tensor, nrow: int, labels: GridLabels, caption: str, name: str,
             zoom: int | None) -> LabelledFigure:
    """Images (N, C, H, W) as one labelled grid, nrow to a row, enlarged `zoom` times (default: ~600 px wide)."""
    drawn = labelled_grid(images.cpu(), nrow, labels, zoom)
    return LabelledFigure(drawn.image, caption, name, drawn.box)


def values_text(values: Tensor | Sequence[float]) -> list[str]:
    """Axis labels: '-1.28', '0', '0.5' (three significant digits; float32 dust such as -1.2e-07 shows as 0)."""
    values = values.tolist() if isinstance(values, Tensor) else list(values)
    scale = max((abs(v) for v in values), default=0.0)
    return [f"{0.0 if abs(v) <= 1e-6 * scale else v:.3g}" for v in values]


def slug(text: str) -> str:
    """A class name as a file-name part: 'Ankle boot' -> 'ankle-boot'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ---------------------------------------------------------------- what a figure needs from a run


def checked_model(run: Run, needs: str) -> nn.Module:
    """The run's model, if it has a decoder (and an encoder, or a posterior spread, when `needs` says so)."""
    model, name = run.model, run.config["model"]
    wanted = (AutoEncoder,) if needs == "encoder" else (AutoEncoder, Generative)
    if not isinstance(model, wanted) and contract_gap(model, *wanted):  # written to the contract, a part left out
        raise RunError(f"{name} cannot be explored: {contract_gap(model, *wanted)}")
    if not isinstance(model, (AutoEncoder, Generative)):
        raise RunError(f"{name} has no latent space to explore; explore works on autoencoder, VAE and DCGAN runs "
                       f"(e.g. `genlab train vae-bn`)")
    if needs == "encoder" and not isinstance(model, AutoEncoder):
        raise RunError(f"{name} has no encoder, so it cannot place images in its latent space; for a GAN use "
                       f"`genlab explore interpolate` or `neighbourhood`, which start from seeded random codes")
    if needs == "spread" and not isinstance(model, (VAE, GAN)):
        raise RunError(f"{name} is a plain autoencoder: its codes have no posterior spread to scale a "
                       f"neighbourhood by; use a VAE run, or `genlab explore manifold --range` around its codes")
    return model


def chosen_test_images(run: Run, data: Dataset, indices: Sequence[int]) -> Tensor:
    """Test images (len(indices), C, H, W) in [0, 1] as the model is tested on them (binarized if so trained)."""
    images = run.test_images(data)
    for i in indices:
        if not 0 <= i < len(images):
            raise ConfigError(f"test image index {i} is out of range: {data.name} has {len(images)} test images, "
                              f"numbered 0..{len(images) - 1}")
    return to_unit_float(images[list(indices)])


def file_images(run: Run, paths: Sequence[str]) -> tuple[Tensor, str]:
    """The user's PNG/JPEG files as the model sees its test images: float (N, C, H, W) in [0, 1] of the run's shape
    (binarized if so trained), and one line saying what was done to them."""
    x, note = load_images_as(paths, run.record.data.image_shape)
    return to_unit_float(run.record.model_images(x)), note


def index_code(run: Run, index: int | None, data_dir: str | None) -> Tensor | None:
    """The code (latent_dim,) of test image `index`, None when not given: where a grid holds the other dims."""
    if index is None:
        return None
    checked_model(run, "encoder")
    x = chosen_test_images(run, run.dataset(data_dir), [index])
    return latent.encode_means(run.model, x)[0]


# ---------------------------------------------------------------- grids of codes


def manifold_figure(run: Run, n: int = 15, dims: tuple[int, int] = (0, 1),
                    value_range: tuple[float, float] | None = None, index: int | None = None,
                    data_dir: str | None = None, zoom: int | None = None) -> LabelledFigure:
    """n x n decoded grid over two latent dims at the prior's quantiles (or over value_range); the other dims at 0,
    or at test image `index`'s code."""
    model = checked_model(run, "decoder")
    latent.check_dims(dims, model.latent_dim)
    if value_range is None and not isinstance(model, Generative):
        raise ConfigError(f"{run.config['model']} has no prior whose quantiles the grid could span; give the "
                          f"span with --range LO HI (look at `genlab explore scatter` for where its codes lie)")
    base = index_code(run, index, data_dir)
    images = latent.manifold(model, n, dims, value_range, base)
    span = f"from {value_range[0]:g} to {value_range[1]:g}" if value_range else "at the prior's quantiles"
    held = f"the other dims at test image {index}'s code" if base is not None else "the other dims at 0"
    caption = (f"Latent manifold: {n}x{n} decoded grid, dim {dims[0]} across and dim {dims[1]} down "
               f"(largest at the top), {span}" + (f"; {held}" if model.latent_dim > 2 else ""))
    values = latent.grid_values(n, value_range)
    labels = GridLabels(columns=values_text(values), rows=values_text(values.flip(0)),
                        across=f"z{dims[0]} ->", down=f"z{dims[1]}", title=f"Latent manifold, {span}")
    return labelled(images, n, labels, caption, "manifold.png", zoom)


def neighbourhood_figure(run: Run, n: int = 15, dims: tuple[int, int] = (0, 1), std: float = 4.0,
                         index: int = 0, seed: int = 0, data_dir: str | None = None,
                         zoom: int | None = None) -> LabelledFigure:
    """n x n decoded grid over a code +/- std standard deviations in two dims: a test image's posterior, or a
    seeded prior code for a model without an encoder."""
    model = checked_model(run, "spread")
    latent.check_dims(dims, model.latent_dim)
    center, scale, where, unit = neighbourhood_center(run, index, seed, data_dir)
    images = latent.neighbourhood(model, center, scale, n, dims, std)
    caption = (f"Neighbourhood of {where}: {n}x{n} decoded grid over its code +/- {std:g} {unit} "
               f"in dims {dims[0]} (across) and {dims[1]} (down)")
    steps = torch.linspace(-std, std, n)
    across, down = (center[d] + steps * scale[d] for d in dims)
    labels = GridLabels(columns=values_text(across), rows=values_text(down.flip(0)), across=f"z{dims[0]} ->",
                        down=f"z{dims[1]}", title=f"Neighbourhood of {where}, +/- {std:g} {unit}")
    return labelled(images, n, labels, caption, "neighbourhood.png", zoom)


def neighbourhood_center(run: Run, index: int, seed: int, data_dir: str | None) -> tuple[Tensor, Tensor, str, str]:
    """Centre and scale (latent_dim,) of a neighbourhood, and their names: test image `index`'s posterior mean and
    standard deviation for a VAE; a seeded prior code and the prior's unit spread for a model without an encoder."""
    model = run.model
    if isinstance(model, VAE):
        x = chosen_test_images(run, run.dataset(data_dir), [index])
        return (*latent.posterior_center(model, x), f"test image {index}", "posterior standard deviations")
    center = latent.seeded_codes(model, 1, seed)[0]
    return center, torch.ones(model.latent_dim), f"a random code (seed {seed})", "prior standard deviations"


def traversal_figure(run: Run, dims: Sequence[int] | None = None, n: int = 11,
                     value_range: tuple[float, float] = (-3.0, 3.0), index: int | None = None,
                     data_dir: str | None = None, zoom: int | None = None) -> LabelledFigure:
    """One row of n images per latent dim (default the first ten), each varying that dim alone over value_range.

    On data with ground-truth factors a VAE's rows say which factor each dim carries most, with its normalised
    mutual information, and without --dims they come in that order, most informative first, collapsed last."""
    model = checked_model(run, "decoder")
    carried, names = factors_carried(run, data_dir)
    if dims:
        dims = list(dims)
    elif carried:
        dims = [row.dim for row in carried][:MAX_DEFAULT_TRAVERSAL_ROWS]
    else:
        dims = list(range(min(model.latent_dim, MAX_DEFAULT_TRAVERSAL_ROWS)))
    latent.check_dims(dims, model.latent_dim)
    base = index_code(run, index, data_dir)
    images = latent.traversal(model, base, dims, n, value_range)
    start = f"test image {index}'s code" if base is not None else "the zero code"
    caption = (f"Traversal: one row per latent dim ({', '.join(map(str, dims))}), each varying that dim alone "
               f"from {value_range[0]:g} to {value_range[1]:g}, starting from {start}")
    rows = [f"z{d}" for d in dims]
    if carried:
        by_dim = {row.dim: row for row in carried}
        rows = [carried_label(by_dim[d], names) for d in dims]
        caption += (f"; each row names the factor its dim carries most and the share of that factor's entropy it "
                    f"holds (normalised mutual information, {FACTOR_POINTS} images drawn from the factors); "
                    f"'collapsed': mean KL to the prior below {COLLAPSED_KL:g} nats")
    labels = GridLabels(columns=values_text(torch.linspace(*value_range, n)), rows=rows,
                        across="value of the row's dim ->", down="dim: factor, NMI" if carried else "dim",
                        title=f"Traversal from {start}")
    return labelled(images, n, labels, caption, "traversal.png", zoom)


FACTOR_POINTS = 5000  # images drawn from the factors to say which factor each dim carries


def carried_label(row: CarriedFactor, names: Sequence[str]) -> str:
    """'z3 pos_x 0.82', or 'z7 collapsed'."""
    return f"z{row.dim} collapsed" if row.collapsed else f"z{row.dim} {names[row.factor]} {row.nmi:.2f}"


def factors_carried(run: Run, data_dir: str | None,
                    seed: int = 0) -> tuple[list[CarriedFactor] | None, tuple[str, ...]]:
    """For a VAE run on data with ground-truth factors: which factor each dim carries (most informative first,
    collapsed last), from FACTOR_POINTS images drawn from the factors, and the factors' names; else (None, ())."""
    model = run.model
    if not isinstance(model, VAE):
        return None, ()
    source = run.dataset(data_dir).factors
    if source is None:
        return None, ()
    levels = source.sample_factors(FACTOR_POINTS, np.random.default_rng(seed))
    x = run.record.model_images(source.images_for(levels))
    mu, kl = [], []
    with torch.no_grad():
        for batch in x.split(1000):
            m, log_var = model.posterior(to_unit_float(batch).to(module_device(model)))
            mu.append(m.double().cpu())
            kl.append(kl_std_normal(m.unsqueeze(-1), log_var.unsqueeze(-1)).double().cpu())  # (B, D): per dim, nats
    return carried_factors(torch.cat(mu).numpy(), levels, torch.cat(kl).mean(0).numpy()), tuple(source.names)


# ---------------------------------------------------------------- paths and directions


def interpolation_figure(run: Run, indices: Sequence[int] = (0, 1), pairs: int = 4, n: int = 10,
                         spherical: bool = False, seed: int = 0, data_dir: str | None = None,
                         zoom: int | None = None, images: Sequence[str] | None = None) -> LabelledFigure:
    """Decoded paths of n steps, one row each: between pairs of test images, or of the image files `images`
    (shown at the ends), or between `pairs` pairs of seeded random codes for a model without an encoder."""
    model = checked_model(run, "decoder" if images is None else "encoder")
    note = ""
    if images is not None:
        if len(images) < 2 or len(images) % 2:
            raise ConfigError(f"--images takes pairs of image files (A B [A B ...]), got {len(images)}")
        x, note = file_images(run, images)
        rows = encoded_paths(run, x, n, spherical)
        names = [Path(p).name for p in images]
        what, ncol = f"image files {pairs_text(names)}", n + 2
        row_names = [f"{a} -> {b}" for a, b in zip(names[::2], names[1::2])]
    elif isinstance(model, AutoEncoder):
        if len(indices) % 2:
            raise ConfigError(f"--indices takes pairs of test images (A B [A B ...]), got {len(indices)} numbers")
        rows = encoded_paths(run, chosen_test_images(run, run.dataset(data_dir), indices), n, spherical)
        what, ncol = f"test images {pairs_text(indices)}", n + 2
        row_names = [f"{a} -> {b}" for a, b in zip(indices[::2], indices[1::2])]
    else:
        codes = latent.seeded_codes(model, 2 * pairs, seed)
        rows = [latent.interpolation(model, a, b, n, spherical).cpu() for a, b in zip(codes[::2], codes[1::2])]
        what, ncol = f"{pairs} pairs of random codes (seed {seed})", n
        row_names = [f"pair {i + 1}" for i in range(pairs)]
    how = "spherical (slerp)" if spherical else "linear"
    caption = f"Interpolation, {how}, between {what}" + ("; originals at the ends" if ncol > n else "")
    name = "interpolation-slerp.png" if spherical else "interpolation.png"
    columns = [f"t={t}" for t in values_text(torch.linspace(0, 1, n))]
    labels = GridLabels(columns=["image A", *columns, "image B"] if ncol > n else columns, rows=row_names,
                        title=f"Interpolation, {how}")
    return replace(labelled(torch.cat(rows), ncol, labels, caption, name, zoom), note=note)


def encoded_paths(run: Run, x: Tensor, n: int, spherical: bool) -> list[Tensor]:
    """Rows of [image a, decoded path a -> b, image b] for each pair (a, b) of images x (2k, C, H, W) in [0, 1]."""
    codes = latent.encode_means(run.model, x).cpu()
    rows = []
    for i in range(0, len(x), 2):
        path = latent.interpolation(run.model, codes[i], codes[i + 1], n, spherical).cpu()
        rows.append(torch.cat([x[i:i + 1].cpu(), path, x[i + 1:i + 2].cpu()]))
    return rows


def pairs_text(indices: Sequence[int | str]) -> str:
    """'0 -> 1, 2 -> 3' for indices (0, 1, 2, 3)."""
    return ", ".join(f"{a} -> {b}" for a, b in zip(indices[::2], indices[1::2]))


def attribute_figure(run: Run, from_class: str | None = None, to_class: str | None = None, strength: float = 1.5,
                     steps: int = 6, n: int = 8, data_dir: str | None = None, zoom: int | None = None,
                     attribute: str | None = None) -> LabelledFigure:
    """Rows of n test images, each followed by its code + s * (attribute vector) decoded, for `steps` strengths s
    from 0 to `strength`. The vector goes from from_class to to_class (by name or number), or with `attribute`
    (a name of the dataset's attributes: Smiling) from the images without it to those with it, the rows then
    being test images without it."""
    model = checked_model(run, "encoder")
    data = run.dataset(data_dir)
    if attribute is not None:
        from_indices, to_indices, shown = latent.named_attribute_indices(data, attribute, n)
        names, name = (f"not {attribute}", attribute), f"attribute-{slug(attribute)}.png"
        title, shown_kind = f"Attribute vector {attribute}", f"test image without {attribute}"
    else:
        if from_class is None or to_class is None:
            raise ConfigError("an attribute vector needs an attribute name, or both a from- and a to-class")
        source, target = latent.parse_class(from_class, data.classes), latent.parse_class(to_class, data.classes)
        from_indices, to_indices, shown = latent.attribute_indices(data, source, target, n)
        names = data.classes[source], data.classes[target]
        name = f"attribute-{slug(names[0])}-to-{slug(names[1])}.png"
        title, shown_kind = f"Attribute vector {names[0]} -> {names[1]}", f"test {names[0]}"
    train_x = run.record.model_images(data.train_x)
    groups = [to_unit_float(train_x[i]) for i in (from_indices, to_indices)]
    strengths = torch.linspace(0, strength, steps)
    images = latent.apply_attribute(model, chosen_test_images(run, data, shown),
                                    latent.attribute_vector(model, *groups), strengths)
    made = (f"the mean code of {len(groups[1])} training images of {names[1]} minus that of {len(groups[0])} of "
            f"{names[0]}" if attribute is None else f"the mean code of {len(groups[1])} training images with "
            f"{attribute} minus that of {len(groups[0])} without it")
    caption = (f"{title} ({made}): each row a {shown_kind}, then its code + s * vector for s = "
               f"{', '.join(f'{s:g}' for s in strengths.tolist())}")
    labels = GridLabels(columns=["original", *(f"s={s}" for s in values_text(strengths))],
                        rows=[f"test {i}" for i in shown], across="code + s * vector, decoded ->", title=title)
    return labelled(images, steps + 1, labels, caption, name, zoom)


# ---------------------------------------------------------------- the scatter plot


def scatter_figure(run: Run, n_images: int = 10000, data_dir: str | None = None) -> LabelledFigure:
    """The codes of the first n_images test images, coloured by class (PCA to 2-D when needed), as a plot."""
    model = checked_model(run, "encoder")
    data = run.dataset(data_dir)
    x = run.test_images(data)[:n_images]
    codes = latent.encode_means(model, to_unit_float(x))
    kind = "posterior means" if isinstance(model, VAE) else "codes"
    projected = "" if codes.shape[1] == 2 else f", projected from {codes.shape[1]}-d by PCA"
    title = f"{run.config['model']} on {data.name}: {len(x)} test {kind}{projected}"
    image = latent_scatter(codes, data.test_y[:len(x)], data.classes, title)
    return LabelledFigure(image, f"Latent scatter: {len(x)} test {kind} coloured by class" + projected, "scatter.png")


# ---------------------------------------------------------------- samples and reconstructions


def samples_figure(run: Run, n: int = 64, nrow: int = 8, seed: int = 0, zoom: int | None = None,
                   temperature: float = 1.0) -> LabelledFigure:
    """n prior samples of a VAE or GAN run from seeded noise, nrow to a row, under a title naming the seed (and the
    temperature T when not 1: z ~ N(0, T^2 I))."""
    if not isinstance(run.model, Generative):
        raise RunError(f"{run.config['model']} cannot sample: it has no prior to draw from; "
                       f"train a VAE or a GAN (e.g. `genlab train vae`) to sample")
    images = latent.tempered_samples(run.model, n, temperature, seed)
    t = f"{temperature:g}"
    prior = "the prior" if temperature == 1 else f"the prior at temperature {t}, z ~ N(0, {t}^2 I)"
    title = f"{run.config['model']}: {n} samples from {prior} (noise seed {seed})"
    return labelled(images, nrow, GridLabels(title=title), title, "samples.png", zoom)


EPOCH_ROWS = 12  # rows of the samples-over-epochs figure (and the report's) at most: evenly spaced epochs


def evenly_spaced(items: Sequence, limit: int) -> list:
    """At most limit items, evenly spaced, always including the first and the last."""
    if len(items) <= limit:
        return list(items)
    picks = sorted({round(i * (len(items) - 1) / (limit - 1)) for i in range(limit)})
    return [items[i] for i in picks]


def epoch_samples(run: Run, n: int = 8) -> tuple[list[int], Tensor]:
    """The epochs shown (at most EPOCH_ROWS, evenly spaced, the last included) and, for each, the first n of the
    fixed-noise samples the trainer saved after it, cut from its grid: float (epochs * n, C, H, W) in [0, 1]."""
    if not isinstance(run.model, Generative):
        raise RunError(f"{run.config['model']} has no samples over epochs: it has no prior to draw from")
    files = RunLayout(run.path)
    saved = [row["epoch"] for row in run.metrics if files.epoch_image("samples", row["epoch"]).is_file()]
    if not saved:
        raise RunError(f"{run.path} holds no per-epoch sample grids ({files.epoch_image('samples', 1).name}, ...)")
    saved = evenly_spaced(saved, EPOCH_ROWS)
    channels, height, width = run.record.data.image_shape
    n = min(n, EPOCH_SAMPLES_PER_ROW)
    tiles = []
    for epoch in saved:  # the trainer's grid: GRID_PADDING pixels around and between the tiles
        grid = to_unit_float(pil_to_tensor(open_image(files.epoch_image("samples", epoch)), channels))
        lefts = [GRID_PADDING + i * (width + GRID_PADDING) for i in range(n)]
        tiles += [grid[:, GRID_PADDING:GRID_PADDING + height, left:left + width] for left in lefts]
    return saved, torch.stack(tiles)


def epoch_samples_figure(run: Run, n: int = 8, zoom: int | None = None) -> LabelledFigure:
    """One row per epoch: the same n noise vectors decoded after each epoch (epoch_samples), rows labelled."""
    epochs, images = epoch_samples(run, n)
    n = len(images) // len(epochs)
    title = f"{run.config['model']}: the same {n} noise vectors decoded after each epoch"
    labels = GridLabels(rows=[f"epoch {epoch}" for epoch in epochs], down="training ->", title=title)
    caption = f"{title} (epochs {', '.join(map(str, epochs))}): fixed-noise samples as saved during training"
    return labelled(images, n, labels, caption, "samples-over-epochs.png", zoom)


def reconstruction_figure(run: Run, n: int = 8, data_dir: str | None = None, zoom: int | None = None,
                          images: Sequence[str] | None = None) -> LabelledFigure:
    """The first n test images, or the image files `images`, above their reconstructions, rows and columns
    labelled."""
    if not isinstance(run.model, AutoEncoder) and contract_gap(run.model, AutoEncoder):
        raise RunError(f"{run.record.model} cannot reconstruct: {contract_gap(run.model, AutoEncoder)}")
    if not isinstance(run.model, AutoEncoder):
        raise RunError(f"{run.record.model} cannot reconstruct: it has no encoder; "
                       f"reconstruct with an autoencoder or VAE run")
    model = checked_model(run, "encoder")
    if images is None:
        data = run.dataset(data_dir)
        x, note = chosen_test_images(run, data, range(min(n, len(data.test_x)))), ""
        columns, what = [f"#{i}" for i in range(len(x))], "test image"
        caption = f"The first {len(x)} test images (top row) and the model's reconstructions of them (bottom row)"
    else:
        x, note = file_images(run, images)
        columns, what = [Path(p).name for p in images], "image file"
        caption = f"The image files {', '.join(columns)} (top row; {note}) and the model's reconstructions of them"
    with torch.no_grad():
        x_hat = model.reconstruct(x.to(module_device(model))).cpu()
    labels = GridLabels(columns=columns, rows=[what, "reconstruction"],
                        title=f"{run.config['model']}: {what}s and their reconstructions")
    return replace(labelled(torch.cat([x, x_hat]), len(x), labels, caption, "reconstructions.png", zoom), note=note)
