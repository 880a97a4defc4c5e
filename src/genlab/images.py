"""Images as tensors: grids, atomic PNG/GIF writing, loading and resizing user images."""
from __future__ import annotations

import math
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from genlab.errors import ConfigError, DataError
from genlab.files import atomic_write

GRAY_MODES = frozenset({"L", "LA", "1", "I", "I;16"})  # PIL modes loaded as one channel by default
IMAGE_FORMATS = ("PNG", "JPEG")  # the only decoders genlab lets PIL use on a user's file or upload
MAX_PIXELS = 8192 * 8192         # pixels of one image read from a file (at most 256 MiB decoded as RGBA)
MIN_FIGURE_WIDTH = 600            # pixels: a labelled grid narrower than this is enlarged by a whole factor
LABEL_FONT_SIZE = 14              # pixels, the labels around a grid
LABEL_COLOR = (34, 34, 34)
# what PIL's PNG and JPEG decoders raise on damaged input (UnidentifiedImageError is an OSError)
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)


class PixelLimitError(DataError):
    """An image whose header declares more pixels than genlab decodes."""


GRID_PADDING = 2  # pixels around and between a grid's tiles


def make_grid(images: Tensor, nrow: int = 8, padding: int = GRID_PADDING, pad_value: float = 1.0) -> Tensor:
    """(N, C, H, W) float in [0, 1] -> one (C, H', W') image, nrow images per row."""
    if images.dim() != 4 or images.shape[0] == 0 or nrow < 1:
        raise ValueError(f"make_grid needs a non-empty (N, C, H, W) batch and nrow >= 1, got shape "
                         f"{tuple(images.shape)} and nrow={nrow}")
    n, channels, height, width = images.shape
    ncol = min(nrow, n)
    nrows = math.ceil(n / ncol)
    grid = torch.full((channels, nrows * (height + padding) + padding, ncol * (width + padding) + padding),
                      pad_value, dtype=images.dtype)
    for i, image in enumerate(images):
        top, left = padding + (i // ncol) * (height + padding), padding + (i % ncol) * (width + padding)
        grid[:, top:top + height, left:left + width] = image
    return grid


def captioned_grid(images: Tensor, captions: list[list[str]], nrow: int = 5, font_size: int = 14,
                   padding: int = 6) -> Tensor:
    """(N, C, H, W) in [0, 1] -> one RGB (3, H', W') image: nrow per row, caption lines in black under each picture."""
    if images.dim() != 4 or images.shape[0] != len(captions):
        raise ValueError(f"captioned_grid needs one caption list per image: {len(captions)} for shape "
                         f"{tuple(images.shape)}")
    font = ImageFont.load_default(size=font_size)
    lines = max(len(caption) for caption in captions)
    n, _, height, width = images.shape
    cell_w = max(width, *(int(font.getlength(line)) for caption in captions for line in caption)) + padding
    cell_h = height + lines * (font_size + 3) + padding
    ncol = min(nrow, n)
    canvas = Image.new("RGB", (ncol * cell_w + padding, math.ceil(n / ncol) * cell_h + padding), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (image, caption) in enumerate(zip(images, captions)):
        left, top = padding + (i % ncol) * cell_w, padding + (i // ncol) * cell_h
        canvas.paste(to_pil(image.expand(3, -1, -1)), (left + (cell_w - padding - width) // 2, top))
        for k, line in enumerate(caption):
            draw.text((left, top + height + 2 + k * (font_size + 3)), line, fill="black", font=font)
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1)


def fit_zoom(cell_width: int, ncol: int, min_width: int = MIN_FIGURE_WIDTH) -> int:
    """The smallest whole enlargement that makes ncol pictures of cell_width pixels at least min_width wide."""
    return max(1, math.ceil(min_width / max(1, ncol * cell_width)))


@dataclass(frozen=True)
class GridLabels:
    """Text around a grid: what each column and row holds, what changes along each axis, and a title line."""

    columns: Sequence[str] = ()  # one per column, above it
    rows: Sequence[str] = ()     # one per row, left of it
    across: str = ""             # what changes left to right, above the column labels
    down: str = ""               # what changes top to bottom, above the row labels
    title: str = ""              # one line above everything


@dataclass(frozen=True)
class LabelledGrid:
    """A labelled grid as one RGB uint8 picture (3, H, W); the pictures fill `box` = (top, left, height, width)."""

    image: Tensor
    box: tuple[int, int, int, int]


def labelled_grid(images: Tensor, nrow: int, labels: GridLabels, zoom: int | None = None,
                  padding: int = 2) -> LabelledGrid:
    """(N, C, H, W) in [0, 1] -> an RGB grid, nrow to a row, enlarged `zoom` times (default: to about
    MIN_FIGURE_WIDTH pixels), with the labels drawn in margins above and to the left."""
    if images.dim() != 4 or images.shape[0] == 0 or nrow < 1 or (zoom is not None and zoom < 1):
        raise ValueError(f"labelled_grid needs a non-empty (N, C, H, W) batch, nrow >= 1 and zoom >= 1, got "
                         f"shape {tuple(images.shape)}, nrow={nrow}, zoom={zoom}")
    ncol = min(nrow, images.shape[0])
    zoom = zoom or fit_zoom(images.shape[-1], ncol)
    if zoom > 1:
        images = images.repeat_interleave(zoom, dim=-2).repeat_interleave(zoom, dim=-1)
    cells = to_pil(make_grid(images.float().cpu().expand(-1, 3, -1, -1), nrow=ncol, padding=padding)).convert("RGB")
    font = ImageFont.load_default(size=LABEL_FONT_SIZE)
    line = LABEL_FONT_SIZE + 6
    left = max([0, *(int(font.getlength(text)) + 10 for text in (*labels.rows, labels.down) if text)])
    top_lines = [text for text in (labels.title, labels.across) if text] + (["columns"] if labels.columns else [])
    top = len(top_lines) * line + (4 if top_lines else 0)
    width = max(left + cells.width, int(font.getlength(labels.title)) + 8)
    canvas = Image.new("RGB", (width, top + cells.height), "white")
    canvas.paste(cells, (left, top))
    draw = ImageDraw.Draw(canvas)
    cell_w, cell_h = images.shape[-1] + padding, images.shape[-2] + padding
    y = 2
    if labels.title:
        draw.text((4, y), labels.title, fill=LABEL_COLOR, font=font)
        y += line
    if labels.across:
        draw.text((left + cells.width // 2, y), labels.across, fill=LABEL_COLOR, font=font, anchor="ma")
        y += line
    for i, text in enumerate(labels.columns[:ncol]):
        draw.text((left + padding + i * cell_w + cell_w // 2, y), text, fill=LABEL_COLOR, font=font, anchor="ma")
    if labels.down:
        draw.text((4, y), labels.down, fill=LABEL_COLOR, font=font)
    for i, text in enumerate(labels.rows):
        draw.text((left - 6, top + padding + i * cell_h + cell_h // 2), text, fill=LABEL_COLOR, font=font, anchor="rm")
    return LabelledGrid(torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1),
                        (top, left, cells.height, cells.width))


def to_pil(image: Tensor) -> Image.Image:
    """(C, H, W) float in [0, 1] (clamped) or uint8, C in {1, 3} -> PIL image."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"to_pil needs one (C, H, W) image with C = 1 (gray) or 3 (RGB), got shape "
                         f"{tuple(image.shape)}; grid a batch first with make_grid")
    if image.dtype != torch.uint8:
        image = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    array = image.cpu().permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def atomic_save(image: Image.Image, path: str | os.PathLike, image_format: str | None = None, **options) -> Path:
    """Save through `genlab.files.atomic_write`; format from the suffix unless given.

    A path that cannot be written (no such folder possible, no permission, a full disk) is a one-line WriteError.
    """
    path = Path(path)
    image_format = image_format or path.suffix.lstrip(".").upper().replace("JPG", "JPEG") or "PNG"
    Image.init()  # registers every format PIL can write
    if image_format not in Image.SAVE:
        raise ConfigError(f"cannot write {path}: {image_format} is not an image format; use .png or .jpg")
    return atomic_write(path, lambda f: image.save(f, format=image_format, **options))


def save_image(image: Tensor, path: str | os.PathLike) -> Path:
    """Write (C, H, W), or (N, C, H, W) as a grid of 8 per row, atomically: PNG or JPEG as the suffix says."""
    options = {"quality": 95} if Path(path).suffix.lower() in (".jpg", ".jpeg") else {}
    return atomic_save(to_pil(single_image(image)), path, **options)


def save_png(image: Tensor, path: str | os.PathLike) -> Path:
    """Write (C, H, W), or (N, C, H, W) as a grid of 8 per row, to a PNG atomically."""
    return atomic_save(to_pil(single_image(image)), path, "PNG")


def save_gif(frames: list[Tensor], path: str | os.PathLike, duration_ms: int = 100) -> Path:
    """Write (C, H, W) frames (or (N, C, H, W) grids of 8 per row) as a GIF looping forever, atomically."""
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    first, *rest = [to_pil(single_image(frame)) for frame in frames]
    return atomic_save(first, path, "GIF", save_all=True, append_images=rest, duration=duration_ms, loop=0)


def single_image(image: Tensor) -> Tensor:
    """(C, H, W) as is; a batch (N, C, H, W) becomes one grid of 8 per row."""
    return make_grid(image, nrow=8) if image.dim() == 4 else image


def open_header(source: str | os.PathLike | BinaryIO, name: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A PNG or JPEG opened lazily (only its header read), refused when it declares over max_pixels.

    Any other format or a damaged header is a DataError naming `name`; too many pixels a PixelLimitError.
    """
    try:
        image = Image.open(source, formats=IMAGE_FORMATS)
    except Image.DecompressionBombError:  # PIL's own, far higher limit: the size is not known here
        raise PixelLimitError(f"image {name} declares over {max_pixels} pixels, the limit; "
                              f"shrink it before giving it to genlab") from None
    except DECODE_ERRORS as e:
        raise DataError(f"cannot read image {name}: {one_line(e)}; expected a PNG or JPEG file") from None
    if image.width * image.height > max_pixels:
        image.close()
        raise PixelLimitError(f"image {name} is {image.width}x{image.height} pixels, over the {max_pixels}-pixel "
                              f"limit; shrink it before giving it to genlab")
    return image


def open_image(source: str | os.PathLike | BinaryIO, name: str | None = None,
               max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A PNG or JPEG with its pixels decoded (at most max_pixels), or a DataError naming the file."""
    name = str(source) if name is None else name
    image = open_header(source, name, max_pixels)
    try:
        image.load()
    except DECODE_ERRORS as e:
        raise DataError(f"cannot read image {name}: {one_line(e)}; expected a PNG or JPEG file") from None
    return image


def one_line(error: BaseException) -> str:
    """An exception's text on one line, or its type when it has none."""
    return " ".join(str(error).split()) or type(error).__name__


def center_square(image: Image.Image) -> Image.Image:
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def pil_to_tensor(image: Image.Image, channels: int) -> Tensor:
    """PIL image -> uint8 (C, H, W), converted to grayscale (1) or RGB (3)."""
    array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def load_image(path: str | os.PathLike, channels: int | None = None,
               size: int | tuple[int, int] | None = None) -> Tensor:
    """Read a PNG/JPEG as uint8 (C, H, W); size=int center-crops to a square first, (H, W) resizes as is."""
    image = open_image(path)
    if channels is None:
        channels = 1 if image.mode in GRAY_MODES else 3
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}")
    if isinstance(size, int):
        image = center_square(image).resize((size, size), Image.Resampling.BICUBIC)
    elif size is not None:
        image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return pil_to_tensor(image, channels)


def preparation(sizes: Sequence[tuple[int, int]], width: int, height: int) -> list[str]:
    """What load_image does to pictures of these (width, height) sizes to make them width x height, counted:
    ['3 center-cropped to squares', '4 resized to 28x28'] (a square target crops first, so only a crop whose
    side differs is resized)."""
    square = width == height
    cropped = sum(w != h for w, h in sizes) if square else 0
    resized = sum((min(w, h) != width) if square else ((w, h) != (width, height)) for w, h in sizes)
    return ([f"{cropped} center-cropped to squares"] if cropped else []) + (
        [f"{resized} resized to {width}x{height}"] if resized else [])


def load_images_as(paths: Sequence[str | os.PathLike], shape: Sequence[int]) -> tuple[Tensor, str]:
    """PNG/JPEG files -> uint8 (N, C, H, W) of shape (C, H, W), made as `folder:` data is (a square is centre-cropped
    then resized, bicubic; gray or RGB), with one line saying what was done to them."""
    channels, height, width = shape
    sizes = []
    for path in paths:
        with open_header(path, str(path)) as header:
            sizes.append(header.size)
    size = height if height == width else (height, width)  # a square model: crop like folder: data does
    x = torch.stack([load_image(path, channels, size) for path in paths])
    done = preparation(sizes, width, height)
    color = "grayscale" if channels == 1 else "RGB"
    what = ", ".join(done) + " (bicubic)" if done else "used as is"
    return x, f"{len(paths)} image file(s) as the run's {color} {width}x{height}: {what}"
