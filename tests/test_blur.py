"""genlab.nn.gaussian_blur: a separable Gaussian with one std for the batch or one per image, edges repeated."""
from __future__ import annotations

import math

import torch

from genlab.nn import gaussian_blur


def direct_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """The 2-D Gaussian applied pixel by pixel on the edge-repeated image: the sum the separable passes factor."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma ** 2))
    weights = weights / weights.sum()
    channels, h, w = image.shape
    out = torch.zeros(channels, h, w, dtype=torch.float64)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            rows = (torch.arange(h) + dy).clamp(0, h - 1)
            cols = (torch.arange(w) + dx).clamp(0, w - 1)
            out += weights[dy + radius, dx + radius] * image.double()[:, rows][:, :, cols]
    return out


def test_one_std_per_image_blurs_each_image_by_its_own_gaussian() -> None:
    x = torch.rand(3, 2, 11, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    stds = torch.tensor([0.7, 1.6, 0.0], dtype=torch.float64)
    out = gaussian_blur(x, stds)
    for image, std, blurred in zip(x, stds.tolist(), out):
        expected = image if std == 0 else direct_blur(image, std)
        torch.testing.assert_close(blurred, expected)


def test_one_std_for_the_batch_smooths_noise_and_keeps_flat_images() -> None:
    noise = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(1))
    blurred = gaussian_blur(noise, 1.0)
    assert blurred.shape == noise.shape and blurred.std() < 0.5 * noise.std()
    torch.testing.assert_close(gaussian_blur(noise, 1.0), gaussian_blur(noise, torch.full((2,), 1.0)))
    torch.testing.assert_close(gaussian_blur(torch.full((1, 1, 6, 6), 0.3), 2.0), torch.full((1, 1, 6, 6), 0.3))


def test_a_bound_on_the_stds_keeps_them_on_the_device() -> None:
    x = torch.rand(4, 3, 9, 9, generator=torch.Generator().manual_seed(2))
    stds = torch.tensor([0.3, 1.2, 0.0, 0.8])
    torch.testing.assert_close(gaussian_blur(x, stds, max_sigma=1.2), gaussian_blur(x, stds))
    # on the meta device no value can reach the host: the bound alone sizes the kernels
    assert gaussian_blur(x.to("meta"), stds.to("meta"), max_sigma=2.0).shape == x.shape
