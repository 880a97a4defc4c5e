"""genlab: generative image models, the tools to look inside them, and honest evaluation.

    from genlab import load_dataset, create_model, train, TrainConfig, load_run

The names load on first use, so `import genlab` (and the `genlab --help` it serves) does not import torch.
"""
from __future__ import annotations

import importlib
import types
from typing import Any

from genlab.errors import GenlabError
from genlab.version import __version__

# public name -> the module that defines it
_API = {
    "Config": "genlab.models.config", "option": "genlab.models.config",
    "Dataset": "genlab.data.catalog", "list_datasets": "genlab.data.catalog", "load_dataset": "genlab.data.catalog",
    "register_dataset": "genlab.data.catalog",
    "MODELS": "genlab.models.registry", "ModelSpec": "genlab.models.registry", "create_model": "genlab.models.registry",
    "register_model": "genlab.models.registry",
    "TrainConfig": "genlab.train.config",
    "Run": "genlab.train.run", "load_run": "genlab.train.run",
    "train": "genlab.workflow",
}

__all__ = ["GenlabError", "__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'genlab' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


class _Package(types.ModuleType):
    """`genlab.train` is the training function even after the `genlab.train` subpackage is imported, which
    binds the subpackage to the same attribute: a property wins over that binding."""

    @property
    def train(self) -> Any:
        return __getattr__("train")

    @train.setter
    def train(self, subpackage: types.ModuleType) -> None:
        pass  # the subpackage stays reachable as sys.modules["genlab.train"] and by `from genlab.train import ...`


import sys  # noqa: E402  (after the class it feeds)

sys.modules[__name__].__class__ = _Package
