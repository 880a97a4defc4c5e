"""`celeba:PATH`: CelebA's aligned faces with their 40 binary attributes and the official partition.

PATH holds the real layout: img_align_celeba/ (202,599 JPEGs of 178x218), list_attr_celeba.txt (the image count,
the 40 attribute names, then one row per image: its file name and 40 values of 1 or -1) and
list_eval_partition.txt (a file name and 0 = train, 1 = valid, 2 = test per row). The rows of both files and the
folder are checked against each other before a pixel is decoded, and any mismatch is one line naming the file.

Each image is cut to its central 148x148 square (left 15, top 35: the crop of PyTorch-VAE and many VAE papers)
and resized to 64x64 with PIL's antialiased bilinear filter, as RGB uint8. Train is partition 0, test partition 2;
the valid partition is not used. Decoding 200k JPEGs takes minutes, so the pixels are decoded once into a cache:
a .npy file (read back without unpickling) in the celeba-cache folder beside genlab's other data (--data-dir,
else $GENLAB_DATA, else ~/.cache/genlab), named by a hash of the folder's path and of everything the pixels come
from: the image names, sizes and mtimes, both text files, the crop and the size. A changed folder is decoded
again, and its new cache replaces the old one.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genlab.data.dataset import Dataset
from genlab.errors import DataError
from genlab.files import WriteError, atomic_write
from genlab.images import DECODE_ERRORS, one_line
from genlab.progress import progress_bar

IMAGE_FOLDER = "img_align_celeba"
ATTRIBUTE_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
ATTRIBUTE_NAMES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young")
WIDTH, HEIGHT = 178, 218  # every aligned CelebA image
CROP = 148                # the central square kept
SIZE = 64                 # the side it is resized to, unless image_size says otherwise
TRAIN, VALID, TEST = "0", "1", "2"
CACHE_VERSION = 1         # bump when the decoding changes: old caches stop matching
MAX_TEXT_BYTES = 64 << 20  # the real list_attr_celeba.txt holds 26 MB
WHERE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


def bad(path: Path, what: str, expected: str) -> DataError:
    """One line: which file, what is wrong with it, what CelebA's layout has instead."""
    return DataError(f"celeba: {path} {what}; expected {expected} (CelebA's layout, from {WHERE})")


def crop_box(width: int = WIDTH, height: int = HEIGHT, side: int = CROP) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the central side x side square: (15, 35, 163, 183) for 178x218."""
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def read_rows(path: Path) -> list[list[str]]:
    """The non-blank lines of a text file, each split on runs of spaces."""
    if not path.is_file():
        raise bad(path, "is missing", f"{path.name} beside {IMAGE_FOLDER}/")
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            raise bad(path, f"holds {path.stat().st_size} bytes", f"under {MAX_TEXT_BYTES} bytes of text")
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise DataError(f"celeba: cannot read {path} ({one_line(err)}); check its permissions") from None
    except UnicodeDecodeError:
        raise bad(path, "is not UTF-8 text", "plain text rows") from None
    return [line.split() for line in text.splitlines() if line.strip()]


def check_file_name(path: Path, row: int, name: str) -> None:
    if not name.lower().endswith(".jpg") or "/" in name or "\\" in name or name.startswith("."):
        raise bad(path, f"names {name!r} in row {row}", f"the plain file name of a JPEG in {IMAGE_FOLDER}/")


def read_attributes(path: Path) -> tuple[list[str], np.ndarray]:
    """File names in the file's order and bool attributes (N, 40) from list_attr_celeba.txt."""
    rows = read_rows(path)
    if len(rows) < 2 or len(rows[0]) != 1 or not rows[0][0].isdigit():
        raise bad(path, "does not start with the image count on line 1 and the attribute names on line 2",
                  "a count, the 40 attribute names, then one row per image")
    count, header, rows = int(rows[0][0]), tuple(rows[1]), rows[2:]
    if header != ATTRIBUTE_NAMES:
        extra = [name for name in header if name not in ATTRIBUTE_NAMES]
        lacking = [name for name in ATTRIBUTE_NAMES if name not in header]
        what = (f"has other columns ({', '.join(extra[:5])})" if extra else
                f"lacks {', '.join(lacking[:5])}" if lacking else "lists the attribute names in another order")
        raise bad(path, f"{what} on line 2", f"the 40 CelebA attribute names, {ATTRIBUTE_NAMES[0]} to "
                                             f"{ATTRIBUTE_NAMES[-1]}, in CelebA's order")
    if len(rows) != count:
        raise bad(path, f"holds {len(rows)} image rows but its line 1 says {count}", "one row per counted image")
    names, values = [], np.empty((len(rows), len(ATTRIBUTE_NAMES)), dtype=bool)
    for i, row in enumerate(rows):
        if len(row) != len(ATTRIBUTE_NAMES) + 1:
            raise bad(path, f"row {i + 1} ({row[0]}) holds {len(row) - 1} values", "40 values of 1 or -1 after "
                                                                                  "the file name")
        check_file_name(path, i + 1, row[0])
        if not set(row[1:]) <= {"1", "-1"}:
            value = next(v for v in row[1:] if v not in ("1", "-1"))
            raise bad(path, f"row {i + 1} ({row[0]}) holds the value {value!r}", "attribute values of 1 or -1")
        names.append(row[0])
        values[i] = [value == "1" for value in row[1:]]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise bad(path, f"lists {name} twice", "one row per image")
        seen.add(name)
    return names, values


def read_partition(path: Path, names: list[str]) -> np.ndarray:
    """The partition ('0', '1' or '2') of each named image, in the attribute file's order."""
    rows, partition = read_rows(path), {}
    for i, row in enumerate(rows):
        if len(row) != 2 or row[1] not in (TRAIN, VALID, TEST):
            raise bad(path, f"row {i + 1} reads {' '.join(row)[:80]!r}", "a file name and 0 (train), 1 (valid) "
                                                                         "or 2 (test) per row")
        if row[0] in partition:
            raise bad(path, f"lists {row[0]} twice", "one row per image")
        partition[row[0]] = row[1]
    known = set(names)
    unknown = [name for name in partition if name not in known]
    if unknown:
        raise bad(path, f"names {len(unknown)} file(s) not in {ATTRIBUTE_FILE} ({', '.join(unknown[:3])})",
                  f"the images of {ATTRIBUTE_FILE}")
    lacking = [name for name in names if name not in partition]
    if lacking:
        raise bad(path, f"lacks {len(lacking)} image(s) of {ATTRIBUTE_FILE} ({', '.join(lacking[:3])})",
                  "one row per image")
    return np.array([partition[name] for name in names])


def list_images(folder: Path) -> dict[str, os.stat_result]:
    """The JPEG files directly in img_align_celeba/ with their stat (size and mtime go into the cache key)."""
    if not folder.is_dir():
        raise bad(folder, "is missing or not a folder", f"the folder {IMAGE_FOLDER}/ of the aligned JPEGs")
    try:
        with os.scandir(folder) as entries:
            return {entry.name: entry.stat() for entry in entries
                    if entry.name.lower().endswith(".jpg") and entry.is_file()}
    except OSError as err:
        raise DataError(f"celeba: cannot list {folder} ({one_line(err)}); check its permissions") from None


def check_images(folder: Path, names: list[str], found: dict[str, os.stat_result]) -> None:
    """Every listed image is in the folder, and the folder holds no image the attribute file leaves out."""
    missing = [name for name in names if name not in found]
    if missing:
        raise bad(folder / missing[0], f"is listed in {ATTRIBUTE_FILE} but missing ({len(missing)} such image(s))",
                  f"every image of {ATTRIBUTE_FILE} in {IMAGE_FOLDER}/")
    if len(found) != len(names):
        listed = set(names)
        extra = sorted(name for name in found if name not in listed)
        raise bad(folder, f"holds {len(found)} JPEGs but {ATTRIBUTE_FILE} lists {len(names)} ({len(extra)} not "
                          f"listed, e.g. {', '.join(extra[:3])})", f"one row of {ATTRIBUTE_FILE} per image")


def cache_key(root: Path, names: list[str], found: dict[str, os.stat_result], size: int) -> str:
    """SHA-256 (hex) over the decoding's parameters, the sorted image names with sizes and mtimes, and both text
    files' bytes: an image added, removed or rewritten, or an edited list, changes it."""
    digest = hashlib.sha256(f"celeba v{CACHE_VERSION} crop {crop_box()} size {size}\n".encode())
    for name in sorted(names):
        stat = found[name]
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    for text in (ATTRIBUTE_FILE, PARTITION_FILE):
        digest.update((root / text).read_bytes())
    return digest.hexdigest()


def cache_path(cache_dir: Path, root: Path, key: str) -> Path:
    """celeba-<folder hash>-<key>.npy: one cache per CelebA folder, replaced when the folder changes."""
    folder = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return cache_dir / f"celeba-{folder}-{key[:32]}.npy"


def decode(path: Path, size: int) -> np.ndarray:
    """One aligned CelebA JPEG -> uint8 (3, size, size): the central 148x148 square, resized (bilinear, antialiased)."""
    try:
        with Image.open(path, formats=("JPEG",)) as image:
            if image.size != (WIDTH, HEIGHT):
                raise bad(path, f"is {image.width}x{image.height} pixels", f"CelebA's aligned {WIDTH}x{HEIGHT} "
                                                                          f"images")
            # crop, then resize: the filter sees only the square (resize's box= would blend in pixels outside it)
            face = image.convert("RGB").crop(crop_box()).resize((size, size), Image.Resampling.BILINEAR)
    except DECODE_ERRORS as err:
        raise bad(path, f"cannot be read ({one_line(err)[:120]})", "a JPEG image; replace the damaged file") from None
    return np.asarray(face, dtype=np.uint8).transpose(2, 0, 1)


def decode_all(folder: Path, names: list[str], size: int) -> np.ndarray:
    """uint8 (N, 3, size, size) for the named images, in order, with a progress bar (minutes for all of CelebA)."""
    pixels = np.empty((len(names), 3, size, size), dtype=np.uint8)
    with progress_bar(len(names), f"decoding CelebA ({CROP}x{CROP} centre crops to {size}x{size})",
                      unit="image") as bar:
        for i, name in enumerate(names):
            pixels[i] = decode(folder / name, size)
            bar.update(1)
    return pixels


def read_cache(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached pixels, or None when there is no cache of this key or it is damaged (then it is decoded again)."""
    if not path.is_file():
        return None
    try:
        pixels = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return pixels if pixels.dtype == np.uint8 and pixels.shape == shape else None


def write_cache(path: Path, pixels: np.ndarray) -> str:
    """Write the cache atomically and remove this folder's older caches; '' or why it could not be written."""
    try:
        atomic_write(path, lambda f: np.save(f, pixels, allow_pickle=False))
    except WriteError as err:  # the data is decoded and usable: say so in the note rather than fail
        return f"; not cached ({err})"
    folder_prefix = path.name.rsplit("-", 1)[0]
    for old in path.parent.glob(f"{folder_prefix}-*.npy"):
        if old != path:
            old.unlink(missing_ok=True)
    return ""


def cached_pixels(root: Path, cache_dir: Path, names: list[str], found: dict[str, os.stat_result],
                  size: int) -> tuple[np.ndarray, str]:
    """The used images' pixels from the cache, or decoded and cached; and a word on which it was."""
    path = cache_path(cache_dir, root, cache_key(root, names, found, size))
    pixels = read_cache(path, (len(names), 3, size, size))
    if pixels is not None:
        return pixels, f"; pixels from the cache {path}"
    pixels = decode_all(root / IMAGE_FOLDER, names, size)
    return pixels, f"; decoded into the cache {path}" + write_cache(path, pixels)


def load_celeba(path: str, cache_dir: str | os.PathLike, image_size: int | None = None) -> Dataset:
    """CelebA at `path` as a Dataset: RGB uint8 (N, 3, 64, 64) faces (148x148 centre crops), partition 0 train,
    partition 2 test, the 40 attributes as bool; pixels cached in cache_dir."""
    if not path.strip():
        raise DataError(f"celeba: needs the folder holding {IMAGE_FOLDER}/, {ATTRIBUTE_FILE} and {PARTITION_FILE}, "
                        f"e.g. celeba:~/data/celeba (from {WHERE})")
    root, size = Path(path).expanduser().resolve(), image_size or SIZE
    if not root.is_dir():
        raise DataError(f"celeba:{path}: {root} is not a folder; give celeba:PATH with the folder holding "
                        f"{IMAGE_FOLDER}/, {ATTRIBUTE_FILE} and {PARTITION_FILE}")
    found = list_images(root / IMAGE_FOLDER)
    names, attributes = read_attributes(root / ATTRIBUTE_FILE)
    partition = read_partition(root / PARTITION_FILE, names)
    check_images(root / IMAGE_FOLDER, names, found)
    train, test = np.flatnonzero(partition == TRAIN), np.flatnonzero(partition == TEST)
    used = np.concatenate([train, test])  # train images first: both splits are views of the one array
    pixels, how = cached_pixels(root, Path(cache_dir).expanduser(), [names[i] for i in used], found, size)
    note = (f"celeba:{root}: official partition, train {len(train)} / test {len(test)}; the valid partition's "
            f"{len(names) - len(used)} images are not used; each {WIDTH}x{HEIGHT} image centre-cropped to "
            f"{CROP}x{CROP} and resized to {size}x{size} (bilinear, antialiased){how}")
    images = torch.from_numpy(pixels)
    return Dataset(name="celeba", train_x=images[:len(train)], test_x=images[len(train):],
                   train_y=torch.zeros(len(train), dtype=torch.long), test_y=torch.zeros(len(test), dtype=torch.long),
                   classes=("face",), attribute_names=ATTRIBUTE_NAMES,
                   train_attributes=torch.from_numpy(attributes[train]),
                   test_attributes=torch.from_numpy(attributes[test]), note=note,
                   source=f"{root} ({CROP}x{CROP} centre crop resized to {size}x{size})")
