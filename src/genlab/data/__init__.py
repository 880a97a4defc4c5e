"""Datasets as device-ready uint8 tensors: Fashion-MNIST, MNIST, procedural shapes, folders of images."""
from genlab.data.catalog import DATASET_NAMES, Dataset, fetch_dataset, list_datasets, load_dataset, search_dirs

__all__ = ["DATASET_NAMES", "Dataset", "fetch_dataset", "list_datasets", "load_dataset", "search_dirs"]
