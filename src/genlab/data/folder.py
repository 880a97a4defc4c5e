"""`folder:PATH` datasets: your own PNG/JPEG images, labels from sub-folder names, binary attributes from an
optional attributes.csv beside them (a header `file,<Name1>,...`, then one row per image of 0/1 or -1/1 values)."""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import torch

from genlab.data.dataset import Dataset
from genlab.errors import DataError
from genlab.images import GRAY_MODES, load_image, open_header, preparation

SUFFIXES = {".png", ".jpg", ".jpeg"}
TEST_FRACTION = 10  # one image in ten goes to the test split
MIN_TRAIN, MIN_TEST = 2, 1  # the trainer skips a lone last image (batch norm), so one image trains nothing
ATTRIBUTE_FILE = "attributes.csv"  # optional, beside the images: file,<Name1>,<Name2>,... then 0/1 (or -1/1) rows
ATTRIBUTE_VALUES = {"1": True, "0": False, "-1": False}
MAX_ATTRIBUTE_BYTES = 64 << 20


def image_files(root: Path) -> list[Path]:
    """Every PNG/JPEG under root, recursively, in sorted (stable) order."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def fingerprint(root: Path) -> str:
    """SHA-256 over every image's path relative to root and its bytes, in sorted order, then attributes.csv's
    (hex): an image added, removed, renamed or changed changes it, and so does an edited attributes.csv. `--resume` compares it, so a run goes on only on the images it began
    with. Reads every file once more (what loading cost, without the decoding)."""
    digest = hashlib.sha256()
    attributes = root / ATTRIBUTE_FILE
    for file in image_files(root) + ([attributes] if attributes.is_file() else []):
        digest.update(file.relative_to(root).as_posix().encode("utf-8", "surrogateescape") + b"\0")
        try:
            with open(file, "rb") as f:
                digest.update(hashlib.file_digest(f, "sha256").digest())
        except OSError as err:
            raise DataError(f"cannot read {file} ({err.strerror or err}); check its permissions") from None
    return digest.hexdigest()


def is_test(relative: Path) -> bool:
    """A stable split: decided by a hash of the relative path, not by the file order."""
    return int(hashlib.sha1(relative.as_posix().encode()).hexdigest(), 16) % TEST_FRACTION == 0


def split(files: list[Path], root: Path) -> tuple[list[Path], list[Path]]:
    """(train, test): ~1 in 10 to test, at least MIN_TEST of them and at least MIN_TRAIN left to train on."""
    if len(files) < MIN_TRAIN + MIN_TEST:
        raise DataError(f"folder:{root} holds {len(files)} image{'s' * (len(files) != 1)}; a train and a test "
                        f"split need at least {MIN_TRAIN + MIN_TEST} ({MIN_TRAIN} to train on, {MIN_TEST} to "
                        f"test); add images")
    test = [f for f in files if is_test(f.relative_to(root))] or files[-1:]  # too few for the hash to pick one
    test = test[:len(files) - MIN_TRAIN]  # the hash picked nearly all: keep enough to train on
    chosen = set(test)
    return [f for f in files if f not in chosen], test


def image_header(path: Path) -> tuple[str, tuple[int, int]]:
    """The PIL mode and (width, height) from the file's header (pixels are not decoded), or a DataError naming it."""
    with open_header(path, str(path)) as image:
        return image.mode, image.size


def guess_channels(headers: list[tuple[str, tuple[int, int]]]) -> int:
    """1 when every image is grayscale, else 3."""
    return 1 if all(mode in GRAY_MODES for mode, _ in headers) else 3


def skipped_files(root: Path) -> list[Path]:
    """The files under root that are not PNG/JPEG images, sorted: loading leaves them out."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() not in SUFFIXES
                  and p != root / ATTRIBUTE_FILE)


def preparation_note(root: Path, headers: list[tuple[str, tuple[int, int]]], size: int) -> str:
    """One line on what loading does to the folder: images used, centre crops, resizes, other files skipped."""
    done = preparation([header for _, header in headers], size, size)
    note = f"folder:{root}: {len(headers)} images used" + (f" ({', '.join(done)})" if done else "")
    skipped = skipped_files(root)
    if skipped:
        names = ", ".join(p.relative_to(root).as_posix() for p in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        plural = "s" * (len(skipped) != 1)
        note += f"; {len(skipped)} other file{plural} skipped (not .png, .jpg or .jpeg: {names})"
    return note


def bad_attributes(root: Path, what: str) -> DataError:
    return DataError(f"folder:{root}: {root / ATTRIBUTE_FILE} {what}; expected a header row file,<Name1>,<Name2>,... "
                     f"then one row per image: its path relative to the folder and 0/1 (or -1/1) per attribute")


def read_csv_rows(root: Path) -> list[list[str]]:
    """The rows of attributes.csv (UTF-8, a byte-order mark allowed), cells stripped, blank rows left out."""
    path = root / ATTRIBUTE_FILE
    try:
        if path.stat().st_size > MAX_ATTRIBUTE_BYTES:
            raise bad_attributes(root, f"holds {path.stat().st_size} bytes, over {MAX_ATTRIBUTE_BYTES}")
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise DataError(f"folder:{root}: cannot read {path} ({err.strerror or err}); check its permissions") from None
    except UnicodeDecodeError:
        raise bad_attributes(root, "is not UTF-8 text") from None
    try:
        rows = [[cell.strip() for cell in row] for row in csv.reader(text.splitlines())]
    except csv.Error as err:
        raise bad_attributes(root, f"is not a readable CSV file ({err})") from None
    return [row for row in rows if any(row)]


def attribute_header(root: Path, rows: list[list[str]]) -> tuple[str, ...]:
    """The attribute names of the header row, checked: first column `file`, then distinct non-empty names."""
    if not rows or not rows[0] or rows[0][0].lower() != "file" or len(rows[0]) < 2:
        raise bad_attributes(root, f"starts with {','.join(rows[0])[:80]!r}" if rows else "is empty")
    names = rows[0][1:]
    if "" in names:
        raise bad_attributes(root, f"has an unnamed column (column {names.index('') + 2}) in its header")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice or "file" in (name.lower() for name in names):
        raise bad_attributes(root, f"names the column {(twice or ['file'])[0]!r} twice in its header")
    return tuple(names)


def attribute_row(root: Path, line: int, row: list[str], width: int) -> list[bool]:
    if len(row) != width + 1:
        count = len(row) - 1
        raise bad_attributes(root, f"row {line} ({row[0]}) holds {count} value{'s' * (count != 1)} for {width} "
                                   f"attributes")
    bad = next((value for value in row[1:] if value not in ATTRIBUTE_VALUES), None)
    if bad is not None:
        raise bad_attributes(root, f"row {line} ({row[0]}) holds the value {bad!r}; values are 1 (has it) and "
                                   f"0 or -1 (has not)")
    return [ATTRIBUTE_VALUES[value] for value in row[1:]]


def read_attributes(root: Path, files: list[Path]) -> tuple[tuple[str, ...], dict[Path, list[bool]]]:
    """(names, {image: its values}) from attributes.csv, every image with exactly one row; ((), {}) without it."""
    if not (root / ATTRIBUTE_FILE).is_file():
        return (), {}
    rows = read_csv_rows(root)
    names = attribute_header(root, rows)
    images = {f.relative_to(root).as_posix(): f for f in files}
    values: dict[Path, list[bool]] = {}
    unknown = []
    for line, row in enumerate(rows[1:], start=2):
        if row[0] not in images:
            unknown.append(row[0])
        elif images[row[0]] in values:
            raise bad_attributes(root, f"lists {row[0]} twice (row {line})")
        else:
            values[images[row[0]]] = attribute_row(root, line, row, len(names))
    if unknown:
        raise bad_attributes(root, f"has rows for {len(unknown)} file(s) that are not images of the folder "
                                   f"({', '.join(unknown[:3])})")
    missing = [f.relative_to(root).as_posix() for f in files if f not in values]
    if missing:
        raise bad_attributes(root, f"has no row for {len(missing)} image(s) ({', '.join(missing[:3])}"
                                   f"{', ...' if len(missing) > 3 else ''})")
    return names, values


def attribute_tensor(group: list[Path], values: dict[Path, list[bool]], width: int) -> torch.Tensor:
    """bool (N, width): the attributes of the group's images, in its order."""
    return torch.tensor([values[f] for f in group], dtype=torch.bool).reshape(len(group), width)


def class_folder(file: Path, root: Path) -> str | None:
    """The first-level sub-folder holding file (its class), or None for a file directly in root."""
    parts = file.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


def class_names(files: list[Path], root: Path) -> list[str]:
    """Sorted first-level sub-folder names, or [root's name] when every image sits directly in root."""
    folders = [class_folder(f, root) for f in files]
    if all(folder is None for folder in folders):
        return [root.name]
    if None in folders:
        loose = files[folders.index(None)]
        raise DataError(f"folder:{root} mixes class sub-folders with loose images such as {loose}; "
                        f"move loose images into a sub-folder (one per class) or into a folder of their own")
    return sorted(set(folders))


def stack_images(group: list[Path], root: Path, classes: list[str], channels: int,
                 size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, C, size, size) and int64 labels (N,) for a list of files."""
    if not group:
        return torch.zeros(0, channels, size, size, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    index = {name: i for i, name in enumerate(classes)}
    labels = [index.get(class_folder(f, root), 0) for f in group]  # a flat folder is one class: 0
    x = torch.stack([load_image(f, channels, size) for f in group])
    return x, torch.tensor(labels, dtype=torch.long)


def load_folder(path: str, image_size: int | None = None, channels: int | None = None) -> Dataset:
    """Dataset from a folder of images (recursive), center-cropped and resized to image_size squares (64)."""
    if not path.strip():
        raise DataError("folder: needs the path of a folder of PNG/JPEG images, e.g. folder:~/pictures")
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"folder:{path}: {root} is not a folder; give folder:PATH with a folder of PNG/JPEG images")
    files = image_files(root)
    if not files:
        raise DataError(f"folder:{path}: no .png, .jpg or .jpeg images under {root}")
    size, classes = image_size or 64, class_names(files, root)
    headers = [image_header(f) for f in files]
    channels = channels or guess_channels(headers)
    names, values = read_attributes(root, files)  # checked before any pixel is decoded
    train, test = split(files, root)
    (train_x, train_y), (test_x, test_y) = (stack_images(group, root, classes, channels, size)
                                            for group in (train, test))
    train_a, test_a = (attribute_tensor(group, values, len(names)) if names else None for group in (train, test))
    note = preparation_note(root, headers, size) + (f"; {len(names)} attributes from {ATTRIBUTE_FILE}" if names else "")
    return Dataset(name=f"folder:{root}", train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                   classes=tuple(classes), source=str(root), note=note,
                   attribute_names=names, train_attributes=train_a, test_attributes=test_a)
