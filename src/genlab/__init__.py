"""genlab: generative image models, the tools to look inside them, and honest evaluation.

    from genlab import load_dataset, create_model, train, TrainConfig, load_run
"""
from genlab.data.catalog import Dataset, list_datasets, load_dataset
from genlab.errors import GenlabError
from genlab.models.registry import MODELS, create_model
from genlab.train.checkpoint import Run, load_run
from genlab.train.trainer import TrainConfig, train
from genlab.version import __version__

__all__ = ["Dataset", "GenlabError", "MODELS", "Run", "TrainConfig", "__version__", "create_model",
           "list_datasets", "load_dataset", "load_run", "train"]
