"""Datasets as device-ready uint8 tensors: Fashion-MNIST, MNIST, procedural shapes and sprites, dSprites, folders.

The names load on first use, so that torch-free modules of this package (photos, imagenet) import without torch.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DATASET_NAMES", "Dataset", "fetch_dataset", "list_datasets", "load_dataset", "search_dirs"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'genlab.data' has no attribute {name!r}")
    return getattr(importlib.import_module("genlab.data.catalog"), name)
