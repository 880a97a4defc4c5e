"""The plots of a run drawn from its codes: the latent scatter (the metric plots are tested with the report)."""
from __future__ import annotations

import pytest
import torch

from genlab import plots


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_latent_scatter_is_an_rgb_picture() -> None:
    codes, labels = torch.randn(60, 4), torch.arange(60) % 3
    image = plots.latent_scatter(codes, labels, ("a", "b", "c"), title="test")
    assert image.dtype == torch.uint8 and image.shape[0] == 3 and image.shape[1] > 200
    assert len(plots.figure_colours(12)) == 12


def test_scatter_axes_name_the_latent_dims_or_the_principal_axes() -> None:
    assert plots.scatter_axis_names(2, torch.tensor([0.6, 0.4])) == ("z[0] (posterior mean)", "z[1] (posterior mean)")
    assert plots.scatter_axis_names(5, torch.tensor([0.7, 0.2])) == ("principal axis 1 (70% of the variance)",
                                                                     "principal axis 2 (20% of the variance)")
