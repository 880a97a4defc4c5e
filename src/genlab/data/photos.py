"""Sample photographs that scikit-image and scikit-learn install as files: `--photo chelsea` and friends."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from genlab.errors import DataError

# name -> (importable package that ships it, path inside that package, what it shows)
PHOTOS = {
    "chelsea": ("skimage", "data/chelsea.png", "a tabby cat (451x300)"),
    "coffee": ("skimage", "data/coffee.png", "a cup of espresso (600x400)"),
    "rocket": ("skimage", "data/rocket.jpg", "a rocket on its launch pad (640x427)"),
    "astronaut": ("skimage", "data/astronaut.png", "an astronaut's portrait (512x512)"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg", "galaxies, the Hubble deep field (1000x872)"),
    "brick": ("skimage", "data/brick.png", "a brick wall texture, grayscale (512x512)"),
    "grass": ("skimage", "data/grass.png", "a grass texture, grayscale (512x512)"),
    "gravel": ("skimage", "data/gravel.png", "a gravel texture, grayscale (512x512)"),
    "china": ("sklearn", "datasets/images/china.jpg", "a Chinese temple (640x427)"),
    "flower": ("sklearn", "datasets/images/flower.jpg", "a flower (640x427)"),
}
INSTALL = {"skimage": "scikit-image", "sklearn": "scikit-learn"}


def package_folder(package: str) -> Path | None:
    """Where an installed package lives, found without importing it; None when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def photo_path(name: str) -> Path:
    """The file of a sample photograph by name; a DataError lists the names or says what to install."""
    if name not in PHOTOS:
        raise DataError(f"unknown photo {name!r}; sample photos are {', '.join(PHOTOS)}")
    package, inside, _ = PHOTOS[name]
    folder = package_folder(package)
    if folder is None or not (folder / inside).is_file():
        raise DataError(f"photo {name!r} comes with {INSTALL[package]}, which is not installed: "
                        f"pip install 'genlab[photos]' (or give an image file instead)")
    return folder / inside
