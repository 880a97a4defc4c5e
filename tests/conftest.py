"""Shared fixtures: seeds, tiny datasets, small training configs."""
from __future__ import annotations

import pytest
import torch

from genlab.data.faces import make_faces
from genlab.data.shapes import make_shapes
from genlab.training.trainer import TrainConfig


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_shapes():
    """A few hundred 28x28 procedural images: enough for a training run of a second."""
    return make_shapes(n_train=512, n_test=128, image_size=28, seed=0)


@pytest.fixture(scope="session")
def tiny_faces():
    """A few hundred 64x64 RGB faces with their attributes and factors: for attribute classifiers and vectors."""
    return make_faces(n_train=256, n_test=64)


@pytest.fixture
def tiny_train_config() -> TrainConfig:
    return TrainConfig(epochs=2, batch_size=64, lr=1e-3, seed=3, device="cpu")
