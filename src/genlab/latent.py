"""Looking inside a latent space: manifold and neighbourhood grids, traversals, interpolation, attribute
vectors and the PCA projection behind the test-set scatter (drawn by genlab.plots). Every function returns codes,
images (N, C, H, W) in [0, 1] or numbers; none draws.

A grid of codes is laid out row-major for `make_grid(images, nrow=n)`: columns sweep the first chosen
dimension left to right, rows sweep the second from its largest value at the top to its smallest at the
bottom, so a grid reads like a scatter plot of those two dimensions.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from genlab.data.batches import iter_ordered
from genlab.data.catalog import Dataset
from genlab.errors import ConfigError
from genlab.nn import module_device

DECODE_CHUNK = 512  # codes decoded per forward pass: bounds memory for large grids


# ---------------------------------------------------------------- codes <-> images


def decode_images(model: nn.Module, z: Tensor) -> Tensor:
    """Codes (N, latent_dim) -> images (N, C, H, W) in [0, 1]: to_image(decode(z)), the same for every model."""
    z = z.to(module_device(model))
    with torch.no_grad():
        return torch.cat([model.to_image(model.decode(chunk)) for chunk in z.split(DECODE_CHUNK)])


def encode_means(model: nn.Module, x: Tensor, batch_size: int = 1000) -> Tensor:
    """Images (N, C, H, W), uint8 or float in [0, 1] -> codes (N, latent_dim) on the model's device: the
    posterior mean for a VAE."""
    with torch.no_grad():
        return torch.cat([model.encode(batch) for batch in iter_ordered(x, batch_size, module_device(model))])


def check_dims(dims: Sequence[int], latent_dim: int) -> None:
    """Every dimension in 0..latent_dim-1 and none repeated, else a ConfigError that says the range."""
    for d in dims:
        if not 0 <= d < latent_dim:
            raise ConfigError(f"latent dimension {d} is out of range: this model's latent space has "
                              f"{latent_dim} dimension(s), numbered 0..{latent_dim - 1}")
    if len(set(dims)) != len(dims):
        raise ConfigError(f"latent dimensions must differ, got {list(dims)}; pick two different --dims")


# ---------------------------------------------------------------- grids of codes


def prior_quantiles(n: int) -> Tensor:
    """(n,) quantiles of N(0, 1) at the midpoints of n equal-probability bins: each cell holds 1/n of the prior."""
    probabilities = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return torch.special.ndtri(probabilities).float()


def grid_values(n: int, value_range: tuple[float, float] | None = None) -> Tensor:
    """(n,) values a manifold grid takes along each dim: the prior's quantiles, or n steps across value_range."""
    return prior_quantiles(n) if value_range is None else torch.linspace(*value_range, n)


def grid_codes(base: Tensor, dims: tuple[int, int], across: Tensor, down: Tensor) -> Tensor:
    """(len(down) * len(across), D) copies of base (D,) with dims[0] set from `across` (columns) and
    dims[1] from `down` (rows, largest first)."""
    rows, columns = torch.meshgrid(down.flip(0), across, indexing="ij")
    codes = base.expand(rows.numel(), -1).clone()
    codes[:, dims[0]] = columns.reshape(-1)
    codes[:, dims[1]] = rows.reshape(-1)
    return codes


def manifold(model: nn.Module, n: int = 15, dims: tuple[int, int] = (0, 1),
             value_range: tuple[float, float] | None = None, base: Tensor | None = None) -> Tensor:
    """Decode an n x n grid over two latent dims: (n*n, C, H, W) in [0, 1].

    The grid spans the prior's quantiles (or `value_range`); the other dims hold `base` (zeros by default).
    """
    check_dims(dims, model.latent_dim)
    values = grid_values(n, value_range)
    base = torch.zeros(model.latent_dim) if base is None else base.detach().cpu()
    return decode_images(model, grid_codes(base, dims, values, values))


def neighbourhood(model: nn.Module, center: Tensor, scale: Tensor, n: int = 15, dims: tuple[int, int] = (0, 1),
                  m: float = 4.0) -> Tensor:
    """Decode center (D,) +/- m * scale (D,) in two dims on an n x n grid: (n*n, C, H, W) in [0, 1]."""
    check_dims(dims, center.shape[-1])
    steps = torch.linspace(-m, m, n)
    center, scale = center.detach().cpu(), scale.detach().cpu()
    across, down = center[dims[0]] + steps * scale[dims[0]], center[dims[1]] + steps * scale[dims[1]]
    return decode_images(model, grid_codes(center, dims, across, down))


def posterior_center(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """One image (1, C, H, W) -> its posterior mean and standard deviation, each (latent_dim,)."""
    with torch.no_grad():
        mu, log_var = model.posterior(x.to(module_device(model)))
    return mu[0].cpu(), torch.exp(0.5 * log_var[0]).cpu()


def traversal_codes(base: Tensor, dims: Sequence[int], values: Tensor) -> Tensor:
    """One row per dim in `dims`: base (D,) with that dim alone set to each of `values`; (len(dims)*n, D)."""
    rows = []
    for d in dims:
        row = base.expand(len(values), -1).clone()
        row[:, d] = values
        rows.append(row)
    return torch.cat(rows)


def traversal(model: nn.Module, base: Tensor | None = None, dims: Sequence[int] | None = None, n: int = 11,
              value_range: tuple[float, float] = (-3.0, 3.0)) -> Tensor:
    """One row of n images per latent dim, each varying that dim alone over value_range: (rows*n, C, H, W)."""
    dims = list(range(model.latent_dim)) if dims is None else list(dims)
    check_dims(dims, model.latent_dim)
    base = torch.zeros(model.latent_dim) if base is None else base.detach().cpu()
    return decode_images(model, traversal_codes(base, dims, torch.linspace(*value_range, n)))


# ---------------------------------------------------------------- paths between codes


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985) between codes (D,) at fractions t (n,): (n, D).

    Follows the great circle between the directions while the norm changes linearly from |z0| to |z1|; it
    keeps paths through a Gaussian prior at typical radii, where a straight line cuts through the low-norm middle.
    """
    norm0, norm1 = z0.norm(), z1.norm()
    u0, u1 = z0 / norm0.clamp_min(1e-12), z1 / norm1.clamp_min(1e-12)
    omega = torch.arccos((u0 @ u1).clamp(-1, 1))
    t = t[:, None]
    if omega < 1e-4:  # (nearly) the same direction: the great circle is a line
        direction = (1 - t) * u0 + t * u1
    else:
        direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    return direction * ((1 - t) * norm0 + t * norm1)


def interpolation_codes(z0: Tensor, z1: Tensor, n: int = 10, spherical: bool = False) -> Tensor:
    """n codes from z0 to z1 inclusive, (n, D): evenly spaced on a line, or on the sphere (slerp)."""
    t = torch.linspace(0, 1, n, dtype=z0.dtype)
    return slerp(z0, z1, t) if spherical else torch.lerp(z0, z1, t[:, None])


def interpolation(model: nn.Module, z0: Tensor, z1: Tensor, n: int = 10, spherical: bool = False) -> Tensor:
    """Decoded path from code z0 to z1 (each (D,)): (n, C, H, W) in [0, 1]."""
    return decode_images(model, interpolation_codes(z0.detach().cpu(), z1.detach().cpu(), n, spherical))


def seeded_codes(model: nn.Module, n: int, seed: int) -> Tensor:
    """n codes from the prior N(0, I), (n, latent_dim), the same for the same seed (a GAN has no encoder)."""
    return torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))


def check_temperature(temperature: float) -> None:
    """A one-line ConfigError unless the temperature T is a finite number above 0."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ConfigError(f"--temperature must be a number above 0 (it scales the prior's standard deviation; "
                          f"1 is the prior itself), got {temperature}")


def tempered_codes(model: nn.Module, n: int, temperature: float, generator: torch.Generator) -> Tensor:
    """z ~ N(0, T^2 I), (n, latent_dim) on the CPU: the standard normal prior with its spread scaled by T > 0.

    Only a standard normal prior scales so; a VampPrior (a mixture of learned Gaussians) is refused.
    """
    check_temperature(temperature)
    prior = getattr(getattr(model, "config", None), "prior", "standard")
    if prior != "standard":
        raise ConfigError(f"--temperature scales a standard normal prior N(0, I); this {type(model).__name__} "
                          f"has the {prior} prior: sample it at temperature 1")
    return temperature * torch.randn(n, model.latent_dim, generator=generator)


def tempered_samples(model: nn.Module, n: int, temperature: float = 1.0, seed: int = 0) -> Tensor:
    """n images (n, C, H, W) in [0, 1] on the CPU, decoded from z ~ N(0, T^2 I); T = 1 is model.sample(n)."""
    generator = torch.Generator().manual_seed(seed)
    if temperature == 1:  # the model's own prior, whatever it is (a VampPrior too)
        with torch.no_grad():
            return model.sample(n, generator=generator).cpu()
    return decode_images(model, tempered_codes(model, n, temperature, generator)).cpu()


# ---------------------------------------------------------------- attribute vectors

ATTRIBUTE_GROUP = 2000  # training images per class averaged into an attribute vector


def parse_class(value: str, classes: Sequence[str]) -> int:
    """A class given by name (any case) or by number -> its number; a ConfigError that lists them otherwise."""
    by_name = {name.lower(): i for i, name in enumerate(classes)}
    if value.lower() in by_name:
        return by_name[value.lower()]
    if value.isdigit() and int(value) < len(classes):
        return int(value)
    listed = ", ".join(f"{i} {name!r}" for i, name in enumerate(classes))
    raise ConfigError(f"unknown class {value!r}; this dataset's classes are {listed}")


def attribute_indices(data: Dataset, source: int, target: int, n: int) -> tuple[Tensor, Tensor, list[int]]:
    """Which images make and show the vector source -> target: training-set indices of the first
    ATTRIBUTE_GROUP images of each class, and test-set indices of the first n images of `source`."""
    groups = [torch.nonzero(data.train_y == c).flatten()[:ATTRIBUTE_GROUP] for c in (source, target)]
    shown = torch.nonzero(data.test_y == source).flatten()[:n].tolist()
    if not (len(groups[0]) and len(groups[1]) and shown):
        raise ConfigError(f"{data.name} needs training images of both classes and test images of --from-class "
                          f"for an attribute vector; pick classes that occur in both splits")
    return groups[0], groups[1], shown


def named_attribute_indices(data: Dataset, attribute: str, n: int) -> tuple[Tensor, Tensor, list[int]]:
    """Which images make and show the vector of a named attribute (Smiling): training-set indices of the first
    ATTRIBUTE_GROUP images without it and with it, and test-set indices of the first n images without it."""
    train, test = data.attribute(attribute)
    groups = [torch.nonzero(has).flatten()[:ATTRIBUTE_GROUP] for has in (~train, train)]
    shown = torch.nonzero(~test).flatten()[:n].tolist()
    if not (len(groups[0]) and len(groups[1]) and shown):
        raise ConfigError(f"{data.name} needs training images with and without {attribute} and test images "
                          f"without it for an attribute vector")
    return groups[0], groups[1], shown


def attribute_vector(model: nn.Module, x_from: Tensor, x_to: Tensor) -> Tensor:
    """mean code of x_to minus mean code of x_from, (latent_dim,): e.g. sneakers -> ankle boots."""
    return (encode_means(model, x_to).mean(0) - encode_means(model, x_from).mean(0)).cpu()


def apply_attribute(model: nn.Module, x: Tensor, vector: Tensor, strengths: Tensor) -> Tensor:
    """For each image (N, C, H, W): the image, then its code + s * vector decoded for each s in strengths.

    Returns (N * (1 + len(strengths)), C, H, W) in [0, 1]: one row per image for make_grid(nrow=1 + S).
    """
    codes = encode_means(model, x).cpu()
    moved = codes[:, None, :] + strengths[:, None] * vector  # (N, S, D)
    decoded = decode_images(model, moved.flatten(0, 1)).cpu().view(len(x), len(strengths), *x.shape[1:])
    return torch.cat([x.cpu()[:, None], decoded], dim=1).flatten(0, 1)


# ---------------------------------------------------------------- projecting codes for the scatter plot


def pca_2d(codes: Tensor) -> tuple[Tensor, Tensor]:
    """Codes (N, D) -> (N, 2) projections on the two leading principal axes, and the fraction of the
    variance each explains (2,). A 2-D latent is returned as is (fractions of its own variance), a 1-D one
    on the x axis."""
    if codes.shape[1] == 1:
        return torch.cat([codes.float(), torch.zeros_like(codes, dtype=torch.float32)], 1), torch.tensor([1.0, 0.0])
    centred = codes.double() - codes.double().mean(0)
    if codes.shape[1] == 2:
        variance = centred.var(0)
        return codes.float(), (variance / variance.sum()).float()
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    explained = singular.square() / singular.square().sum()
    return (centred @ vh[:2].T).float(), explained[:2].float()
