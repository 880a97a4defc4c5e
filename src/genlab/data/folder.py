"""`folder:PATH` datasets: your own PNG/JPEG images, labels from sub-folder names."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch


from genlab.errors import DataError
from genlab.images import load_image, open_image

SUFFIXES = {".png", ".jpg", ".jpeg"}
TEST_FRACTION = 10  # one image in ten goes to the test split


def image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def is_test(relative: Path) -> bool:
    """A stable split: decided by a hash of the relative path, not by the file order."""
    return int(hashlib.sha1(relative.as_posix().encode()).hexdigest(), 16) % TEST_FRACTION == 0


def split(files: list[Path], root: Path) -> tuple[list[Path], list[Path]]:
    test = [f for f in files if is_test(f.relative_to(root))]
    if not test and len(files) >= 2:
        test = [files[-1]]  # too few files for the hash to pick one: keep at least one test image
    train = [f for f in files if f not in test]
    return train, test


def guess_channels(files: list[Path]) -> int:
    """1 when every image is grayscale, else 3."""
    gray = {"L", "LA", "1", "I", "I;16"}
    return 1 if all(open_image(f).mode in gray for f in files) else 3


def load_folder(path: str, image_size: int | None = None, channels: int | None = None):
    """Dataset from a folder of images (recursive), resized to image_size (default 64) squares."""
    from genlab.data.catalog import Dataset  # catalog imports this module: import at call time

    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"folder:{path}: {root} is not a folder; give folder:PATH with a folder of PNG/JPEG images")
    files = image_files(root)
    if not files:
        raise DataError(f"folder:{path}: no .png, .jpg or .jpeg images under {root}")
    size = image_size or 64
    channels = channels or guess_channels(files)
    labelled = any(len(f.relative_to(root).parts) > 1 for f in files)
    classes = sorted({f.relative_to(root).parts[0] for f in files if len(f.relative_to(root).parts) > 1}) \
        if labelled else [root.name]
    files = [f for f in files if not labelled or len(f.relative_to(root).parts) > 1]

    def tensors(group: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([load_image(f, channels, size) for f in group]) if group else \
            torch.zeros(0, channels, size, size, dtype=torch.uint8)
        y = torch.tensor([classes.index(f.relative_to(root).parts[0]) if labelled else 0 for f in group],
                         dtype=torch.long)
        return x, y

    train, test = split(files, root)
    (train_x, train_y), (test_x, test_y) = tensors(train), tensors(test)
    return Dataset(name=f"folder:{root}", train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                   classes=tuple(classes), source=str(root))



