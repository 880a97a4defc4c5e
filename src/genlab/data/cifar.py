"""CIFAR-10 from its official binary layout (cifar-10-binary.tar.gz), never from the pickled Python version.

The archive extracts to cifar-10-batches-bin/: data_batch_1.bin .. data_batch_5.bin and test_batch.bin, each
10000 records of 3073 bytes (one label byte 0..9, then the red, green and blue 32x32 planes, row-major), and
batches.meta.txt (the 10 class names, one a line). Every file's size is checked before it is read, every label
is checked, and a found archive is checked against the published md5 and extracted member by member: only the
expected regular files inside cifar-10-batches-bin/ are written, each of its expected size, into a temporary
folder that is renamed into place when complete. Nothing is unpickled and tarfile extracts nothing itself.

The catalog hands this module the folders to search (genlab.data.catalog.search_dirs) and where to download.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from genlab.data import idx
from genlab.data.dataset import Dataset
from genlab.errors import DataError

NAME = "cifar10"
ARCHIVE = "cifar-10-binary.tar.gz"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # published with the archive
FOLDER = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
META_FILE = "batches.meta.txt"
FILES = (*TRAIN_FILES, TEST_FILE, META_FILE)
CHANNELS, SIDE = 3, 32
RECORD_BYTES = 1 + CHANNELS * SIDE * SIDE  # 3073: the label byte, then the R, G and B planes
RECORDS_PER_FILE = 10_000  # every batch file of the real data set; tests set this lower for a miniature
N_CLASSES = 10
MAX_META_BYTES = 4096      # the real batches.meta.txt holds 61 bytes
MAX_MEMBERS = 64           # the real archive holds 9
READ_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError)
FIX = f"delete it and run `genlab data fetch {NAME}`"


def records_expected(records: int | None) -> int:
    """Records per batch file: `records` when given (a test's miniature), else the real 10000."""
    return RECORDS_PER_FILE if records is None else records


def read_batch(path: str | os.PathLike, records: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch file: uint8 images (N, 3, 32, 32) in RGB order and int64 labels (N,) in 0..9.

    The size is checked (N records of 3073 bytes, N = 10000 unless `records` says otherwise) before a byte is
    read, and exactly that many bytes are read.
    """
    path, count = Path(path), records_expected(records)
    expected = count * RECORD_BYTES
    try:
        size = path.stat().st_size
        if size != expected:
            raise DataError(f"{path} holds {size} bytes, {wrong_size(size, count)}; {FIX}")
        buffer = np.empty(expected, np.uint8)
        with open(path, "rb") as f:
            found = idx.read_into(f, memoryview(buffer))
            extra = len(f.read(1)) if found == expected else 0
    except OSError as e:
        raise DataError(f"{path} could not be read ({idx.one_line(e)}); {FIX}") from None
    if found != expected or extra:  # it changed between the size check and the read
        raise DataError(f"{path} changed while it was read ({found + extra} bytes, expected {expected}); {FIX}")
    table = buffer.reshape(count, RECORD_BYTES)
    labels = table[:, 0]
    bad = np.flatnonzero(labels >= N_CLASSES)
    if bad.size:
        raise DataError(f"{path} holds label {int(labels[bad[0]])} in record {int(bad[0])} ({bad.size} such "
                        f"record{'s' if bad.size > 1 else ''}); CIFAR-10 labels are 0..{N_CLASSES - 1}; {FIX}")
    images = np.ascontiguousarray(table[:, 1:]).reshape(count, CHANNELS, SIDE, SIDE)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def wrong_size(size: int, count: int) -> str:
    """Why a batch file of `size` bytes is not `count` records of 3073 bytes."""
    if size % RECORD_BYTES:
        return (f"not a whole number of {RECORD_BYTES}-byte records (truncated or not a CIFAR-10 batch file); "
                f"expected {count} records, {count * RECORD_BYTES} bytes")
    return f"{size // RECORD_BYTES} records; a CIFAR-10 batch file holds {count} ({count * RECORD_BYTES} bytes)"


def read_classes(path: str | os.PathLike) -> tuple[str, ...]:
    """The 10 class names of batches.meta.txt, one a line (blank lines ignored), checked before use."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_META_BYTES:
            raise DataError(f"{path} holds {size} bytes; CIFAR-10's class list is under {MAX_META_BYTES}; {FIX}")
        with open(path, "rb") as f:
            raw = f.read(MAX_META_BYTES + 1)
    except OSError as e:
        raise DataError(f"{path} could not be read ({idx.one_line(e)}); {FIX}") from None
    try:
        names = tuple(line.strip() for line in raw.decode("utf-8").splitlines() if line.strip())
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; expected the {N_CLASSES} class names one a line; {FIX}") from None
    if len(names) != N_CLASSES or len(set(names)) != N_CLASSES:
        raise DataError(f"{path} holds {len(names)} names ({len(set(names))} distinct); expected the {N_CLASSES} "
                        f"CIFAR-10 class names, one a line; {FIX}")
    return names


def holds_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES)


def missing_files(folder: Path) -> list[str]:
    return [name for name in FILES if not (folder / name).is_file()]


def read_folder(folder: str | os.PathLike, records: int | None = None) -> Dataset:
    """The extracted cifar-10-batches-bin folder as a Dataset: 5 x N train images, N test images, 10 classes."""
    folder = Path(folder)
    missing = missing_files(folder)
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)} of the CIFAR-10 binary layout ({', '.join(FILES)}); "
                        f"delete the folder and run `genlab data fetch {NAME}`")
    classes = read_classes(folder / META_FILE)
    train = [read_batch(folder / name, records) for name in TRAIN_FILES]
    test_x, test_y = read_batch(folder / TEST_FILE, records)
    train_x, train_y = torch.cat([x for x, _ in train]), torch.cat([y for _, y in train])
    return Dataset(NAME, train_x, train_y, test_x, test_y, classes, source=str(folder))


def find(dirs: Sequence[Path]) -> Path | None:
    """The first searched folder holding the data: its cifar-10-batches-bin/ (or the files themselves), else the
    archive, else an incomplete cifar-10-batches-bin/ (so that reading it names what is missing). Returns the
    folder of the files or the archive's path."""
    for folder in map(Path, dirs):
        if holds_files(folder / FOLDER):
            return folder / FOLDER
        if holds_files(folder):
            return folder
        if (folder / ARCHIVE).is_file():
            return folder / ARCHIVE
        if (folder / FOLDER).is_dir():
            return folder / FOLDER
    return None


def check_archive(archive: Path) -> None:
    """The archive must be the published one (md5), before anything in it is trusted."""
    try:
        found = idx.md5_of(archive)
    except OSError as e:
        raise DataError(f"{archive} could not be read ({idx.one_line(e)}); {FIX}") from None
    if found != ARCHIVE_MD5:
        raise DataError(f"{archive} is not the published CIFAR-10 binary archive (md5 {found}, expected "
                        f"{ARCHIVE_MD5}); {FIX}")


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a member of the archive is refused, or None."""
    name = member.name
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or "\\" in name or ".." in parts or parts[0] != FOLDER or len(parts) > 2:
        return f"the member {name!r} lies outside {FOLDER}/"
    if member.isdir():
        return None if len(parts) == 1 else f"the member {name!r} is a folder inside {FOLDER}/"
    if not member.isfile():
        return f"the member {name!r} is a link or special file, not a regular file"
    return None


def expected_member_size(base: str, size: int, records: int | None) -> str | None:
    """Why a member of `size` bytes cannot be the file `base`, or None."""
    if base == META_FILE:
        return None if size <= MAX_META_BYTES else f"holds {size} bytes, over {MAX_META_BYTES}"
    count = records_expected(records)
    return None if size == count * RECORD_BYTES else f"holds {size} bytes, {wrong_size(size, count)}"


def copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    """Write the member's bytes to dest ourselves (no tarfile.extract: no links, modes or owners from the tar)."""
    source = tar.extractfile(member)
    with source, open(dest, "xb") as out:
        left = member.size
        while left > 0:
            chunk = source.read(min(left, idx.CHUNK_BYTES))
            if not chunk:
                raise EOFError(f"the member {member.name!r} is cut short")
            out.write(chunk)
            left -= len(chunk)


def extract(archive: str | os.PathLike, dest: str | os.PathLike, records: int | None = None,
            checksum: bool = True) -> Path:
    """Extract the archive's cifar-10-batches-bin/ into dest, safely; returns dest/cifar-10-batches-bin.

    The archive's md5 is checked first (unless checksum=False); any member outside the folder, a link, a special
    file, a duplicate or a file of the wrong size refuses the whole archive, and nothing is left behind.
    """
    archive, dest = Path(archive), Path(dest)
    if checksum:
        check_archive(archive)
    target = dest / FOLDER
    try:
        dest.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=dest, prefix=f".{FOLDER}.", suffix=".tmp"))
    except OSError as e:
        raise DataError(f"cannot extract {archive} into {dest} ({idx.one_line(e)}); pass a writable --data-dir "
                        f"or set GENLAB_DATA") from None
    try:
        written = unpack(archive, work, records)
        missing = [name for name in FILES if name not in written]
        if missing:
            raise DataError(f"{archive} lacks {', '.join(f'{FOLDER}/{name}' for name in missing)}; {FIX}")
        try:
            os.rename(work, target)
        except OSError:
            if not holds_files(target):  # not another process's complete extraction: something in the way
                raise DataError(f"cannot extract {archive}: {target} is in the way and lacks "
                                f"{', '.join(missing_files(target))}; delete it and try again") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def unpack(archive: Path, work: Path, records: int | None) -> set[str]:
    """Copy the archive's expected files into work after checking each member; returns the names written."""
    written: set[str] = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for count, member in enumerate(tar):  # members are read one at a time as the stream goes
                if count >= MAX_MEMBERS:
                    raise DataError(f"{archive} holds more than {MAX_MEMBERS} members; the CIFAR-10 archive holds "
                                    f"9; {FIX}")
                problem = member_problem(member)
                if problem:
                    raise DataError(f"{archive} refused: {problem}; nothing was extracted; {FIX}")
                base = PurePosixPath(member.name).name
                if member.isdir() or base not in FILES:
                    continue  # the folder itself, readme.html
                if base in written:
                    raise DataError(f"{archive} refused: {FOLDER}/{base} appears twice; nothing was extracted; {FIX}")
                size_problem = expected_member_size(base, member.size, records)
                if size_problem:
                    raise DataError(f"{archive} refused: {member.name} {size_problem}; nothing was extracted; {FIX}")
                copy_member(tar, member, work / base)
                written.add(base)
    except READ_ERRORS as e:
        raise DataError(f"{archive} is not a readable tar.gz archive ({idx.one_line(e)}); {FIX}") from None
    return written


def not_found(dirs: Sequence[Path], reason: str) -> DataError:
    searched = ", ".join(str(d) for d in dirs)
    return DataError(f"{NAME} not found (looked for {FOLDER}/ or {ARCHIVE} in {searched}); {reason}; get it with "
                     f"`genlab data fetch {NAME}` on a networked machine, or put {ARCHIVE} ({ARCHIVE_URL}) or its "
                     f"extracted {FOLDER}/ in one of those folders")


def writable_dir(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def locate(dirs: Sequence[Path], download_to: Path, download: bool = True, records: int | None = None) -> Path:
    """The folder of the extracted files: found, extracted from a found archive, or downloaded and extracted."""
    found = find(dirs)
    if found is not None and found.name != ARCHIVE:
        return found
    if found is not None:  # extracted beside the archive when that folder is writable, else where downloads go
        return extract(found, found.parent if writable_dir(found.parent) else download_to, records)
    if not download:
        raise not_found(dirs, "not downloaded because downloads are disabled (download=False)")
    try:
        archive = idx.download(ARCHIVE_URL, Path(download_to) / ARCHIVE, ARCHIVE_MD5, timeout=60)
    except DataError as e:
        raise not_found(dirs, f"download failed ({e})") from None
    return extract(archive, download_to, records, checksum=False)  # download() published it only on a match


def load_cifar10(dirs: Sequence[Path], download_to: Path, download: bool = True,
                 records: int | None = None) -> Dataset:
    """CIFAR-10 (50000 train, 10000 test RGB images of 32x32) from the first folder of `dirs` that holds it."""
    return read_folder(locate(dirs, download_to, download, records), records)


def describe(dirs: Sequence[Path]) -> tuple[bool, str]:
    """(found, where) for `genlab data list`."""
    found = find(dirs)
    if found is None:
        return False, f"not in {', '.join(map(str, dirs))}; `genlab data fetch {NAME}`"
    if found.name == ARCHIVE:
        return True, f"{found} (extracted on first use)"
    if missing_files(found):
        return False, f"{found} lacks {', '.join(missing_files(found))}; delete it and `genlab data fetch {NAME}`"
    return True, str(found)
