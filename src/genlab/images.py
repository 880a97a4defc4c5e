"""Images as tensors: grids, atomic PNG/GIF writing, loading and resizing user images."""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from torch import Tensor

from genlab.errors import ConfigError, DataError

GRAY_MODES = frozenset({"L", "LA", "1", "I", "I;16"})  # PIL modes loaded as one channel by default


def make_grid(images: Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> Tensor:
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
    """Save through a temporary file in the same folder, then rename; format from the suffix unless given.

    A path that cannot be written (no such folder possible, no permission, a folder in the way) is a ConfigError.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror or e}; choose another output path") from None
    os.close(fd)
    try:
        image_format = image_format or path.suffix.lstrip(".").upper().replace("JPG", "JPEG") or "PNG"
        image.save(tmp, format=image_format, **options)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; pictures are meant to be shared
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {e.strerror or e}; choose another output path") from None
    except KeyError:  # PIL knows no such format
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {image_format} is not an image format; use .png or .jpg") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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


def open_image(path: str | os.PathLike) -> Image.Image:
    """PIL image with its pixels read, or a DataError naming the file."""
    try:
        image = Image.open(path)
        image.load()
        return image
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DataError(f"cannot read image {path}: {e}; expected a PNG or JPEG file") from None


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
