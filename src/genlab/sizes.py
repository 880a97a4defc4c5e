"""Image-size arithmetic of the conv model families, without torch: what a config checks before any network
is built."""
from __future__ import annotations

from collections.abc import Sequence

from genlab.errors import ConfigError


def conv_sizes(size: int, n_layers: int, kernel_size: int, padding: str) -> list[int]:
    """Side lengths [input, after layer 1, ...] of stride-2 convs: 'same' and 'half' halve (rounding down),
    'valid' gives (i - k) // 2 + 1."""
    sizes = [size]
    for _ in range(n_layers):
        i = sizes[-1]
        sizes.append((i - kernel_size) // 2 + 1 if padding == "valid" else i // 2)
    return sizes


def check_image_shape(arch: str, image_shape: Sequence[int], n_conv_layers: int, kernel_size: int = 5,
                      padding: str = "same") -> None:
    """Conv models must be able to rebuild the image size: 'same' halves H and W per layer exactly, 'half' halves
    them rounding down (the decoder restores odd sizes), 'valid' shrinks them."""
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ConfigError(f"image_shape must be (channels, height, width); got {tuple(image_shape)}")
    if arch != "conv":
        return
    _, height, width = image_shape
    if padding == "same":
        factor = 2 ** n_conv_layers
        if height % factor or width % factor:
            raise ConfigError(
                f"this conv model needs height and width divisible by {factor} "
                f"(it halves them {n_conv_layers} times) but the images are {height}x{width}; "
                f"use --image-size {factor * max(1, round(height / factor))} or an MLP model")
    elif min(conv_sizes(min(height, width), n_conv_layers, kernel_size, padding)) < 1:
        how = "unpadded" if padding == "valid" else "halving"
        raise ConfigError(f"{n_conv_layers} {how} stride-2 convs of kernel {kernel_size} shrink "
                          f"{height}x{width} images to nothing; use a larger --image-size or fewer --conv-channels")
