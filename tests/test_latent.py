"""Latent-space exploration: shapes and the property that makes each picture mean what its caption says."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from genlab import latent
from genlab.errors import ConfigError
from genlab.models.registry import create_model


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


class IdentityVAE(nn.Module):
    """Code = the image's pixels, image = the code: every decoded picture shows the codes it was given."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.scale = nn.Parameter(torch.ones(()))  # a parameter, so the model has a device

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu = x.flatten(1) * self.scale
        return mu, torch.full_like(mu, 2 * torch.log(torch.tensor(0.5)).item())  # sigma = 0.5

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        return z.view(len(z), 1, 1, self.latent_dim)

    def to_image(self, decoded: Tensor) -> Tensor:
        return decoded


def codes_of(images: Tensor) -> Tensor:
    return images.flatten(1)


@pytest.fixture
def tiny_vae() -> nn.Module:
    return create_model("vae", image_shape=(1, 8, 8), hidden=(16,), latent_dim=3).eval()


def test_prior_quantiles_are_symmetric_increasing_and_equal_mass() -> None:
    q = latent.prior_quantiles(15)
    assert torch.allclose(q, -q.flip(0), atol=1e-6)
    assert q[7] == 0 and bool((q.diff() > 0).all())
    cdf = torch.special.ndtr(q.double())
    assert torch.allclose(cdf, (torch.arange(15) + 0.5).double() / 15, atol=1e-6)  # bin midpoints


def test_manifold_grid_layout_reads_like_a_plot() -> None:
    model, n = IdentityVAE(4), 5
    codes = codes_of(latent.manifold(model, n, dims=(1, 3), base=torch.tensor([7.0, 0, 9.0, 0])))
    values = latent.prior_quantiles(n)
    grid = codes.view(n, n, 4)
    assert torch.allclose(grid[0, :, 1], values)               # across: dim 1 increases left to right
    assert torch.allclose(grid[:, 0, 3], values.flip(0))       # down: dim 3 largest at the top
    assert bool((grid[..., 0] == 7).all() and (grid[..., 2] == 9).all())  # the other dims hold the base


def test_manifold_on_a_real_vae_gives_images(tiny_vae) -> None:
    images = latent.manifold(tiny_vae, 4, dims=(0, 2), value_range=(-2.0, 2.0))
    assert images.shape == (16, 1, 8, 8)
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("dims, needle", [((0, 3), "out of range"), ((1, 1), "must differ"), ((-1, 0), "0..2")])
def test_bad_dims_are_config_errors(dims, needle, tiny_vae) -> None:
    with pytest.raises(ConfigError, match=needle):
        latent.manifold(tiny_vae, 3, dims=dims)


def test_neighbourhood_spans_mean_plus_minus_m_standard_deviations() -> None:
    model = IdentityVAE(3)
    x = torch.tensor([[[[0.2, -0.5, 1.0]]]])
    center, scale = latent.posterior_center(model, x)
    assert torch.allclose(scale, torch.full((3,), 0.5))
    grid = codes_of(latent.neighbourhood(model, center, scale, n=5, dims=(0, 2), m=4.0)).view(5, 5, 3)
    assert torch.allclose(grid[2, 2], center)                         # the middle cell is the image's code
    assert torch.allclose(grid[0, :, 0], 0.2 + torch.linspace(-2, 2, 5))  # +/- 4 sigma = +/- 2
    assert torch.allclose(grid[:, 0, 2], 1.0 + torch.linspace(2, -2, 5))
    assert bool((grid[..., 1] == -0.5).all())


def test_each_traversal_row_varies_one_dimension_only() -> None:
    model, base = IdentityVAE(4), torch.tensor([0.5, -1.0, 2.0, 0.0])
    rows = codes_of(latent.traversal(model, base, dims=[2, 0, 3], n=6)).view(3, 6, 4)
    for row, dim in zip(rows, [2, 0, 3]):
        changed = (row != base).any(0)
        assert changed.nonzero().flatten().tolist() == [dim]
        assert torch.allclose(row[:, dim], torch.linspace(-3, 3, 6))


def test_traversal_of_every_dimension_by_default(tiny_vae) -> None:
    assert latent.traversal(tiny_vae, n=5).shape == (15, 1, 8, 8)


def test_slerp_ends_at_the_codes_and_interpolates_the_norm() -> None:
    z0, z1 = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    path = latent.interpolation_codes(z0, z1, n=5, spherical=True)
    assert torch.allclose(path[0], z0, atol=1e-6) and torch.allclose(path[-1], z1, atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.linspace(3, 1, 5), atol=1e-5)
    directions = path / path.norm(dim=1, keepdim=True)
    angles = torch.rad2deg(torch.arccos(directions @ torch.tensor([1.0, 0.0, 0.0]).clamp(-1, 1)))
    assert torch.allclose(angles, torch.linspace(0, 90, 5), atol=1e-3)  # constant angular speed


def test_slerp_of_parallel_codes_and_linear_interpolation() -> None:
    z = torch.tensor([1.0, 2.0])
    assert torch.allclose(latent.interpolation_codes(z, 3 * z, 3, spherical=True)[1], 2 * z, atol=1e-6)
    line = latent.interpolation_codes(torch.zeros(2), torch.tensor([2.0, 4.0]), n=3)
    assert torch.allclose(line, torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]]))


def test_interpolation_decodes_the_path(tiny_vae) -> None:
    z0, z1 = latent.seeded_codes(tiny_vae, 2, seed=4)
    assert torch.equal(latent.seeded_codes(tiny_vae, 2, seed=4), torch.stack([z0, z1]))
    images = latent.interpolation(tiny_vae, z0, z1, n=7, spherical=True)
    assert images.shape == (7, 1, 8, 8)
    assert torch.allclose(images[0], latent.decode_images(tiny_vae, z0[None])[0])


def test_attribute_vector_is_the_difference_of_class_mean_codes(tiny_vae) -> None:
    x_from, x_to = torch.rand(10, 1, 8, 8), torch.rand(6, 1, 8, 8)
    vector = latent.attribute_vector(tiny_vae, x_from, x_to)
    with torch.no_grad():
        expected = tiny_vae.encode(x_to).mean(0) - tiny_vae.encode(x_from).mean(0)
    assert torch.allclose(vector, expected, atol=1e-6)


@pytest.mark.parametrize("value, number", [("Circle", 1), ("CROSS", 3), ("2", 2)])
def test_parse_class_by_name_or_number(tiny_shapes, value, number) -> None:
    assert tiny_shapes.classes[3] == "cross" and latent.parse_class(value, tiny_shapes.classes) == number
    with pytest.raises(ConfigError, match="1 'circle'"):
        latent.parse_class(str(len(tiny_shapes.classes)), tiny_shapes.classes)


def test_attribute_indices_pick_each_class_and_the_source_test_images(tiny_shapes) -> None:
    source, target = latent.attribute_indices(tiny_shapes, 1, 3, n=5)[:2]
    shown = latent.attribute_indices(tiny_shapes, 1, 3, n=5)[2]
    assert bool((tiny_shapes.train_y[source] == 1).all() and (tiny_shapes.train_y[target] == 3).all())
    assert len(source) == int((tiny_shapes.train_y == 1).sum()) <= latent.ATTRIBUTE_GROUP
    assert shown == torch.nonzero(tiny_shapes.test_y == 1).flatten()[:5].tolist()
    assert source.tolist() == sorted(source.tolist()), "the first images of the class, in data-set order"


def test_attribute_indices_need_images_of_both_classes(tiny_shapes) -> None:
    empty = tiny_shapes.train_y.max().item() + 1  # a class number no training image has
    with pytest.raises(ConfigError, match="both classes"):
        latent.attribute_indices(tiny_shapes, 0, empty, n=3)


def test_apply_attribute_rows_start_with_the_image_then_add_the_vector() -> None:
    model, x = IdentityVAE(3), torch.tensor([[[[1.0, 2.0, 3.0]]], [[[0.0, 0.0, 0.0]]]])
    vector, strengths = torch.tensor([1.0, 0.0, -1.0]), torch.tensor([0.0, 0.5, 2.0])
    rows = codes_of(latent.apply_attribute(model, x, vector, strengths)).view(2, 4, 3)
    assert torch.equal(rows[:, 0], codes_of(x))                       # the original image first
    assert torch.allclose(rows[0, 1:], codes_of(x)[0] + strengths[:, None] * vector)


def test_pca_projects_onto_the_plane_the_codes_lie_in() -> None:
    plane = torch.randn(200, 2) * torch.tensor([3.0, 1.0])
    basis = torch.linalg.qr(torch.randn(5, 2)).Q  # an orthonormal 2-D plane in 5-D
    points, explained = latent.pca_2d(plane @ basis.T)
    assert torch.allclose(explained.sum(), torch.tensor(1.0), atol=1e-5)
    assert explained[0] > explained[1]
    assert torch.allclose(points.norm(dim=1), (plane - plane.mean(0)).norm(dim=1), atol=1e-4)
    same, _ = latent.pca_2d(plane)
    assert torch.equal(same, plane)  # a 2-D latent is plotted as it is
    line, explained = latent.pca_2d(plane[:, :1])
    assert torch.equal(line[:, 0], plane[:, 0]) and not line[:, 1].any() and explained.tolist() == [1.0, 0.0]


def test_a_named_attribute_groups_the_images_without_and_with_it() -> None:
    from genlab.data.dataset import Dataset
    x = torch.zeros(6, 1, 4, 4, dtype=torch.uint8)
    y = torch.zeros(6, dtype=torch.long)
    train = torch.tensor([[1], [0], [1], [0], [0], [1]])
    test = torch.tensor([[1], [1], [0], [1], [0], [0]])
    data = Dataset("mine", x, y, x, y, ("a",), attribute_names=("Smiling",), train_attributes=train,
                   test_attributes=test)
    without, with_it, shown = latent.named_attribute_indices(data, "Smiling", n=2)
    assert without.tolist() == [1, 3, 4] and with_it.tolist() == [0, 2, 5] and shown == [2, 4]
    nobody = Dataset("mine", x, y, x, y, ("a",), attribute_names=("Smiling",), train_attributes=torch.ones(6, 1),
                     test_attributes=test)
    with pytest.raises(ConfigError, match="with and without Smiling"):
        latent.named_attribute_indices(nobody, "Smiling", n=2)
