"""genlab: generative image models, the tools to look inside them, and honest evaluation.

    from genlab import load_dataset, create_model, train, TrainConfig, load_run
"""
from genlab.data.catalog import Dataset, list_datasets, load_dataset, register_dataset
from genlab.errors import GenlabError
from genlab.models.config import Config, option
from genlab.models.registry import MODELS, ModelSpec, create_model, register_model
from genlab.train.config import TrainConfig
from genlab.train.run import Run, load_run
from genlab.version import __version__
from genlab.workflow import train

__all__ = ["Config", "Dataset", "GenlabError", "MODELS", "ModelSpec", "Run", "TrainConfig", "__version__",
           "create_model", "list_datasets", "load_dataset", "load_run", "option", "register_dataset",
           "register_model", "train"]
