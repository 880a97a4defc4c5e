"""Binary images stored eight pixels to a byte: an eighth of the memory, unpacked only where they are read.

dSprites-sized data (737,280 binary 64x64 images) is 3 GB as uint8 but 377 MB packed. A PackedImages stands
where a Dataset holds its uint8 (N, C, H, W) images: the trainer's batch gather (`x.index_select(0, idx)`),
slicing and indexing (`x[i]`, `x[a:b]`, `x[idx]`) return ordinary uint8 tensors in {0, 255}, so only the
images read are ever unpacked; `narrow` and `to(device)` keep the images packed.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.errors import DataError

BIT_ORDER = (7, 6, 5, 4, 3, 2, 1, 0)  # np.packbits' order: a byte's first pixel is its most significant bit


def pack_images(images: np.ndarray | Tensor) -> Tensor:
    """Binary images (N, C, H, W), any dtype with 0 = off and nonzero = on -> uint8 (N, C*H*W/8) packed bits."""
    flat = np.asarray(images).reshape(len(images), -1)
    if flat.shape[1] % 8:
        raise DataError(f"packed images need a multiple of 8 pixels per image, not {flat.shape[1]}")
    return torch.from_numpy(np.packbits(flat != 0, axis=1))


def unpack_bits(bits: Tensor) -> Tensor:
    """uint8 (B, P) -> uint8 (B, P, 8) in {0, 255} with torch ops on the bits' device (the GPU's unpacking)."""
    shifts = torch.tensor(BIT_ORDER, dtype=torch.uint8, device=bits.device)
    return bits.unsqueeze(-1).bitwise_right_shift(shifts).bitwise_and_(1).mul_(255)


def unpack_images(bits: Tensor, image_shape: tuple[int, int, int]) -> Tensor:
    """uint8 packed bits (B, P) -> uint8 images (B, C, H, W) in {0, 255}, on the bits' device."""
    if bits.device.type == "cpu":  # np.unpackbits: ~5x faster than unpack_bits on one CPU thread
        pixels = torch.from_numpy(np.unpackbits(bits.numpy(), axis=1)).mul_(255)
    else:
        pixels = unpack_bits(bits)
    return pixels.view(bits.shape[0], *image_shape)


class PackedImages:
    """Binary uint8 images (N, C, H, W) in {0, 255}, held as packed bits (N, C*H*W/8) on any device."""

    def __init__(self, bits: Tensor, image_shape: tuple[int, int, int]) -> None:
        channels, height, width = image_shape
        if bits.dtype != torch.uint8 or bits.dim() != 2 or bits.shape[1] * 8 != channels * height * width:
            raise DataError(f"packed bits must be uint8 (N, {channels * height * width // 8}) for "
                            f"{channels}x{height}x{width} images, got {bits.dtype} {tuple(bits.shape)}")
        self.bits, self.image_shape = bits, (channels, height, width)

    @classmethod
    def from_images(cls, images: np.ndarray | Tensor) -> PackedImages:
        """Pack binary images (N, C, H, W): nonzero pixels are on."""
        return cls(pack_images(images), tuple(images.shape[1:]))

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.bits.shape[0], *self.image_shape))

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8  # what reading them gives

    @property
    def device(self) -> torch.device:
        return self.bits.device

    @property
    def nbytes(self) -> int:
        """Bytes held (an eighth of the unpacked images')."""
        return self.bits.numel()

    def __len__(self) -> int:
        return self.bits.shape[0]

    def dim(self) -> int:
        return 4

    def unpack(self) -> Tensor:
        """Every image as uint8 (N, C, H, W): 8x the memory, for small sets only."""
        return unpack_images(self.bits, self.image_shape)

    def index_select(self, dim: int, index: Tensor) -> Tensor:
        """uint8 images (B, C, H, W) at `index` along dim 0: the trainer's batch gather, unpacked."""
        if dim != 0:
            raise ValueError("packed images are selected along dim 0 (the image axis) only")
        return unpack_images(torch.index_select(self.bits, 0, index), self.image_shape)

    def __getitem__(self, key: Any) -> Tensor:
        """The images at an int, slice, list or index tensor, unpacked like the same index of a uint8 tensor."""
        if isinstance(key, tuple):  # x[i, 0] would index the packed bytes, not the pixels
            raise TypeError("packed images are indexed along the image axis only (x[i], x[a:b], x[idx]); "
                            "index the result for pixels")
        rows = self.bits[key]
        if rows.dim() == 1:  # one image: (C, H, W)
            return unpack_images(rows.unsqueeze(0), self.image_shape)[0]
        return unpack_images(rows, self.image_shape)

    def narrow(self, dim: int, start: int, length: int) -> PackedImages:
        """Images start..start+length-1, still packed (a view, as Tensor.narrow)."""
        if dim != 0:
            raise ValueError("packed images are narrowed along dim 0 (the image axis) only")
        return PackedImages(self.bits.narrow(0, start, length), self.image_shape)

    def to(self, device: torch.device | str) -> PackedImages:
        """The same images, packed, on `device`."""
        return PackedImages(self.bits.to(device), self.image_shape)

    def cpu(self) -> PackedImages:
        return self.to("cpu")

    def contiguous(self) -> PackedImages:
        return PackedImages(self.bits.contiguous(), self.image_shape)

    def __repr__(self) -> str:
        channels, height, width = self.image_shape
        return (f"PackedImages({len(self)} binary {channels}x{height}x{width} images, "
                f"{self.nbytes / 2**20:.1f} MiB packed, {self.device})")
