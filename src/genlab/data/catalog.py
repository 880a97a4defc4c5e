"""Named datasets as uint8 tensors (N, C, H, W) with labels: where to find them, how to get them."""
from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from genlab.data import cifar, idx
from genlab.data.celeba import load_celeba
from genlab.data.dataset import Dataset
from genlab.data.dsprites import load_dsprites
from genlab.data.faces import check_face_options, faces_size, make_faces
from genlab.data.folder import load_folder
from genlab.data.shapes import make_shapes
from genlab.data.sprites import check_sprite_options, make_sprites, sprites_size
from genlab.errors import DataError, GenlabError, did_you_mean
from genlab.plugins import DATASETS_GROUP, load_plugins, one_line

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
CLASSES = {"fashion-mnist": FASHION_CLASSES, "mnist": tuple(str(d) for d in range(10))}

# md5 of the published .gz files (what a download must match)
GZ_MD5 = {
    "fashion-mnist": {"train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                      "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
                      "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
                      "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310"},
    "mnist": {"train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
              "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
              "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
              "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c"},
}
# sha256 of the decompressed payloads: holds for any re-compression (Debian recompresses the .gz files)
PAYLOAD_SHA256 = {
    "fashion-mnist": {"train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                      "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                      "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                      "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
}
MIRRORS: dict[str, list[str]] = {
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/"],
}
SYSTEM_DIRS: dict[str, str] = {"fashion-mnist": "/usr/share/datasets/fashion-mnist",
                               "mnist": "/usr/share/datasets/mnist"}
BUILT_IN = ("fashion-mnist", "mnist", "cifar10", "shapes", "sprites", "faces")
DATASET_NAMES = BUILT_IN
HOW_TO_GET = {"fashion-mnist": "`apt-get install dataset-fashion-mnist` (Debian), ",
              "mnist": ""}


DatasetLoader = Callable[[str | None], Dataset]  # data_dir (or None) -> Dataset


class DatasetSpec(NamedTuple):
    """A dataset added with `register_dataset` or the `genlab.datasets` entry point."""

    loader: DatasetLoader
    description: str


REGISTERED: dict[str, DatasetSpec] = {}  # filled by register_dataset and, on first use, the entry points
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def register_dataset(name: str, loader: DatasetLoader, description: str = "", replace: bool = False) -> None:
    """Make `name` a dataset for load_dataset and every command; loader(data_dir) returns a Dataset."""
    if not NAME_PATTERN.fullmatch(name) or name.startswith("folder"):
        raise DataError(f"dataset name {name!r} must be lowercase letters, digits, '.', '_' or '-' "
                        f"(at most 64, not starting with 'folder')")
    if name in BUILT_IN or (name in REGISTERED and not replace):
        raise DataError(f"a dataset named {name!r} already exists; choose another name")
    if not callable(loader):
        raise DataError(f"the loader for dataset {name!r} must be callable as loader(data_dir) -> Dataset")
    REGISTERED[name] = DatasetSpec(loader, description or f"registered dataset {name}")


@functools.cache
def load_entry_points() -> Mapping[str, str]:
    """Register the datasets of installed packages (the `genlab.datasets` entry point group), once.

    Returns the entry points refused (name -> one line saying which and why); every other dataset works.
    """
    refused = {}
    for plugin in load_plugins(DATASETS_GROUP):
        if plugin.name in REGISTERED and REGISTERED[plugin.name].loader is plugin.loaded:
            continue  # registered already, e.g. by register_dataset
        problem = plugin.problem
        if problem is None:
            summary = (getattr(plugin.loaded, "__doc__", None) or "").strip().splitlines() \
                if callable(plugin.loaded) else []
            try:
                register_dataset(plugin.name, plugin.loaded, summary[0] if summary else "")
            except DataError as err:
                problem = str(err)
        if problem is not None:
            refused[plugin.name] = plugin.refusal(problem)
    return MappingProxyType(refused)


def dataset_names() -> tuple[str, ...]:
    """Every dataset name load_dataset knows (folder:PATH aside)."""
    load_entry_points()
    return (*BUILT_IN, *REGISTERED)


def load_registered(name: str, data_dir: str | os.PathLike | None) -> Dataset:
    """Call a registered loader and check that it kept the Dataset contract; its own exception becomes one line
    naming the dataset and the loader."""
    loader = REGISTERED[name].loader
    try:
        data = loader(None if data_dir is None else str(data_dir))
    except GenlabError:
        raise
    except Exception as err:  # a plugin's FileNotFoundError, KeyError, ...: one line, not a traceback
        where = f"{getattr(loader, '__module__', '?')}.{getattr(loader, '__qualname__', type(loader).__name__)}"
        raise DataError(f"the loader of dataset {name!r} ({where}) failed: {one_line(err)}") from err
    if not isinstance(data, Dataset):
        raise DataError(f"the loader of dataset {name!r} returned a {type(data).__name__}, not a genlab Dataset")
    return data


class DatasetStatus(NamedTuple):
    name: str
    available: bool
    detail: str


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for an IDX dataset, in order: --data-dir, $GENLAB_DATA, the cache, the system."""
    dirs: list[Path] = []
    for root in (data_dir, os.environ.get("GENLAB_DATA")):
        if root:
            dirs += [Path(root).expanduser() / name, Path(root).expanduser()]
    dirs.append(Path.home() / ".cache" / "genlab" / name)
    if name in SYSTEM_DIRS:
        dirs.append(Path(SYSTEM_DIRS[name]))
    return dirs


def file_in(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def find(name: str, data_dir=None) -> Path | None:
    """The first searched folder holding all four IDX files (each .gz or raw)."""
    for folder in search_dirs(name, data_dir):
        if all(file_in(folder, stem) for stem in IDX_FILES):
            return folder
    return None


def download_dir(name: str, data_dir=None) -> Path:
    root = data_dir or os.environ.get("GENLAB_DATA")
    return Path(root).expanduser() / name if root else Path.home() / ".cache" / "genlab" / name


def download_all(name: str, data_dir=None) -> Path:
    """Download the four files from the first mirror that serves them all, verifying md5s."""
    dest, errors = download_dir(name, data_dir), []
    for base in MIRRORS[name]:
        try:
            for stem in IDX_FILES:
                if not (dest / f"{stem}.gz").is_file():
                    idx.download(base + f"{stem}.gz", dest / f"{stem}.gz", GZ_MD5[name][stem])
            return dest
        except (OSError, DataError) as e:  # OSError: e.g. no permission to create the folder
            errors.append(idx.one_line(e))
    raise DataError("; ".join(errors) or f"no mirrors configured for {name}")


def not_found(name: str, data_dir, reason: str) -> DataError:
    searched = ", ".join(str(d) for d in search_dirs(name, data_dir))
    return DataError(f"{name} not found (looked in {searched}); {reason}; get it with "
                     f"{HOW_TO_GET[name]}`genlab data fetch {name}` on a networked machine, or put the four IDX "
                     f"files in one of those folders")


def locate(name: str, data_dir=None, download: bool = True) -> Path:
    folder = find(name, data_dir)
    if folder is not None and data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataError(f"--data-dir {data_dir} is not a folder, and {name} was found elsewhere ({folder}); "
                        f"pass --data-dir {folder}, or leave --data-dir out to search the usual places")
    if folder is not None:
        return folder
    if not download:
        raise not_found(name, data_dir, "not downloaded because downloads are disabled (download=False)")
    try:
        return download_all(name, data_dir)
    except DataError as e:
        raise not_found(name, data_dir, f"download failed ({e})") from None


SPLIT_SIZES = {"train": 60_000, "t10k": 10_000}  # images per split in MNIST and Fashion-MNIST; a file may hold fewer


def declared_count(images_path: Path, labels_path: Path, prefix: str, name: str | None) -> int:
    """The image count the split's two headers declare, checked against the known split size and against each
    other before either payload is decompressed."""
    image_type, image_dims = idx.read_header(images_path, name)
    _, label_dims = idx.read_header(labels_path, name)
    if len(image_dims) != 3 or image_type != np.uint8:
        raise DataError(f"{images_path} declares {image_dims} {image_type} data, not uint8 images of 28x28; "
                        f"{idx.fix_advice(name)}")
    count, height, width = image_dims
    if (height, width) != (28, 28):
        raise DataError(f"{images_path} declares {count} images of {height}x{width}, not 28x28 as in {name}; "
                        f"{idx.fix_advice(name)}")
    if count > SPLIT_SIZES[prefix]:
        raise DataError(f"{images_path} declares {count} images; the {name} {prefix} split has "
                        f"{SPLIT_SIZES[prefix]}; {idx.fix_advice(name)}")
    if label_dims != [count]:
        raise DataError(f"{labels_path} declares {label_dims[0] if len(label_dims) == 1 else label_dims} labels for "
                        f"the {count} images of {images_path}; expected one label per image; {idx.fix_advice(name)}")
    return count


def read_split(folder: Path, prefix: str, name: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One split ('train' or 't10k'): uint8 images (N, 1, 28, 28) and int64 labels (N,) in 0..9."""
    images_path = file_in(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = file_in(folder, f"{prefix}-labels-idx1-ubyte")
    count = declared_count(images_path, labels_path, prefix, name)
    labels = idx.read_idx(labels_path, name, dims=[count])
    images = idx.read_idx(images_path, name, dims=[count, 28, 28])
    return images.unsqueeze(1), idx.class_labels(labels, 10, labels_path, name)


def load_idx_dataset(name: str, data_dir=None, download: bool = True) -> Dataset:
    folder = locate(name, data_dir, download)
    (train_x, train_y), (test_x, test_y) = read_split(folder, "train", name), read_split(folder, "t10k", name)
    return Dataset(name, train_x, train_y, test_x, test_y, CLASSES[name], source=str(folder))


RESIZE_CHUNK = 4096  # images per interpolate call: 60000 at 64x64 in float32 at once would be ~1 GB


def resized(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size), antialiased bilinear."""
    out = torch.empty(x.shape[0], x.shape[1], size, size, dtype=torch.uint8, device=x.device)
    for start in range(0, x.shape[0], RESIZE_CHUNK):
        chunk = F.interpolate(x[start:start + RESIZE_CHUNK].float(), size=(size, size), mode="bilinear",
                              antialias=True, align_corners=False)
        out[start:start + RESIZE_CHUNK] = chunk.round_().clamp_(0, 255)
    return out


def adapt(data: Dataset, image_size: int | None, channels: int | None) -> Dataset:
    """Resize and/or repeat the gray channel, as the model needs."""
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}")
    if image_size is not None and image_size < 4:
        raise DataError(f"--image-size must be at least 4, got {image_size}")
    train_x, test_x = data.train_x, data.test_x
    if image_size is not None and image_size != train_x.shape[-1]:
        train_x, test_x = resized(train_x, image_size), resized(test_x, image_size)
    if channels == 3 and train_x.shape[1] == 1:
        train_x, test_x = train_x.repeat(1, 3, 1, 1), test_x.repeat(1, 3, 1, 1)
    elif channels == 1 and train_x.shape[1] == 3:
        raise DataError(f"{data.name} has colour images; load it with channels=3 or convert it first")
    return dataclasses.replace(data, train_x=train_x.contiguous(), test_x=test_x.contiguous())


def load_dataset(name: str, *, data_dir: str | os.PathLike | None = None, image_size: int | None = None,
                 channels: int | None = None, download: bool = True, seed: int = 0) -> Dataset:
    """A named dataset: 'fashion-mnist', 'mnist', 'shapes', a registered one, or 'folder:PATH'."""
    if data_dir is not None and not Path(data_dir).expanduser().is_dir() and name not in CLASSES:
        raise DataError(f"--data-dir {data_dir} is not a folder; give the folder that holds the dataset's files, "
                        f"or leave --data-dir out")
    if name.startswith("folder:"):
        return adapt(load_folder(name.removeprefix("folder:"), image_size, channels), None, channels)
    if name.startswith("celeba:"):  # 64x64 faces decoded once into a cache beside the other data
        return adapt(load_celeba(name.removeprefix("celeba:"), download_dir("celeba-cache", data_dir), image_size),
                     None, channels)
    if name.startswith("dsprites:"):
        check_sprite_options(name, image_size, channels)
        return load_dsprites(name.removeprefix("dsprites:"))
    if name == "sprites" or name.startswith("sprites:"):
        check_sprite_options(name, image_size, channels)
        return make_sprites(sprites_size(name))
    if name == "faces" or name.startswith("faces:"):
        check_face_options(name, image_size, channels)
        return make_faces(faces_size(name))
    if name == "shapes":
        return adapt(make_shapes(image_size=image_size or 28, seed=seed), None, channels)
    if name in CLASSES:
        return adapt(load_idx_dataset(name, data_dir, download), image_size, channels)
    if name == cifar.NAME:
        return adapt(cifar.load_cifar10(search_dirs(name, data_dir), download_dir(name, data_dir), download),
                     image_size, channels)
    if name in dataset_names():
        return adapt(load_registered(name, data_dir), image_size, channels)
    if name in load_entry_points():
        raise DataError(load_entry_points()[name])
    raise DataError(f"unknown dataset {name!r}{did_you_mean(name, dataset_names())}; choose one of "
                    f"{', '.join(dataset_names())}, folder:PATH, dsprites:PATH or celeba:PATH")


def verify(name: str, folder: Path) -> None:
    """Check found files against the known payload checksums, where we have them."""
    for stem, expected in PAYLOAD_SHA256.get(name, {}).items():
        path = file_in(folder, stem)
        found = idx.payload_sha256(path, name)
        if found != expected:
            raise DataError(f"{path} does not match the published {name} data (decompressed sha256 {found[:12]}..., "
                            f"expected {expected[:12]}...); {idx.fix_advice(name)}")


def fetch_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Find or download an IDX dataset or CIFAR-10 and verify it; returns its folder."""
    if name == cifar.NAME:  # found, extracted or downloaded (md5 of the archive), then every file read and checked
        folder = cifar.locate(search_dirs(name, data_dir), download_dir(name, data_dir))
        cifar.read_folder(folder)
        return folder
    if name not in CLASSES:
        raise DataError(f"only {', '.join(CLASSES)} and {cifar.NAME} can be fetched; {name!r} is "
                        f"{'generated on the fly' if name in ('shapes', 'sprites', 'faces') else 'unknown'}")
    folder = locate(name, data_dir)
    verify(name, folder)
    return folder


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[DatasetStatus]:
    """Each named dataset and where it was found, or where it was looked for."""
    statuses = []
    for name in CLASSES:
        folder = find(name, data_dir)
        detail = str(folder) if folder else "not in " + ", ".join(map(str, search_dirs(name, data_dir))) + \
            f"; `genlab data fetch {name}`"
        statuses.append(DatasetStatus(name, folder is not None, detail))
    statuses.append(DatasetStatus(cifar.NAME, *cifar.describe(search_dirs(cifar.NAME, data_dir))))
    statuses.append(DatasetStatus("shapes", True, "procedural (generated from a seed, no download)"))
    statuses.append(DatasetStatus("sprites", True, "procedural dSprites grid, 737,280 binary 64x64 images (drawn "
                                                   "in ~10 s); sprites:N for N of them"))
    statuses.append(DatasetStatus("faces", True, "procedural cartoon faces, 60,000 + 10,000 RGB 64x64 images with "
                                                 "attributes (drawn in ~5 s); faces:N for N training faces"))
    statuses += [DatasetStatus(name, True, REGISTERED[name].description) for name in dataset_names()
                 if name in REGISTERED]
    statuses += [DatasetStatus(name, False, message) for name, message in load_entry_points().items()]
    return statuses
