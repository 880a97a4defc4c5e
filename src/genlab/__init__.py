"""genlab: generative image models, the tools to look inside them, and honest evaluation.

    from genlab import load_dataset, create_model, train, TrainConfig, load_run

The names load on first use, so `import genlab` (and the `genlab --help` it serves) does not import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

from genlab.errors import GenlabError
from genlab.heap import keep_freed_memory
from genlab.threads import wait_quietly
from genlab.version import __version__

wait_quietly()  # before torch loads its OpenMP runtime: threads that sleep when they wait (genlab.threads)
keep_freed_memory()  # freed activations are reused, not handed back and refaulted (genlab.heap)

# public name -> the module that defines it
_API = {
    "Config": "genlab.config", "option": "genlab.config",
    "Dataset": "genlab.data.catalog", "list_datasets": "genlab.data.catalog", "load_dataset": "genlab.data.catalog",
    "register_dataset": "genlab.data.catalog",
    "MODELS": "genlab.models.registry", "ModelSpec": "genlab.models.registry", "create_model": "genlab.models.registry",
    "register_model": "genlab.models.registry",
    "TrainConfig": "genlab.options",
    "Run": "genlab.runs.store", "load_run": "genlab.runs.store",
    "train": "genlab.workflow",
}

__all__ = ["GenlabError", "__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'genlab' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
