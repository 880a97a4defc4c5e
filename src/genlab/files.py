"""The one way genlab writes a file: a temporary file in the same folder, fsync, rename.

A reader never sees half a file, and a kill at any instant leaves the old file or the new one. Temporary
files of writes that were killed are named `.NAME.*.tmp`; `remove_leftovers` deletes them in a folder,
`remove_leftovers_of` those of one file.
"""
from __future__ import annotations

import errno
import glob
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from genlab.errors import GenlabError

TEMP_SUFFIX = ".tmp"


class WriteError(GenlabError):
    """A file could not be written (full disk, no permission, a file where a folder should be)."""


def write_failure(path: Path, err: OSError) -> WriteError:
    """One line saying which file could not be written, why, and what to do."""
    if err.errno == errno.ENOSPC:
        advice = "the disk is full: free some space"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "no permission to write there: choose another folder"
    elif err.errno in (errno.ENOTDIR, errno.EEXIST):
        advice = "a file stands where a folder is needed: choose another path"
    else:
        advice = "check the path and the disk"
    return WriteError(f"cannot write {path} ({err.strerror or err}); {advice}")


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the rename itself is still atomic
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call write(f) on a temporary file beside `path`, then rename it over `path`; returns the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    except OSError as err:
        raise write_failure(path, err) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; run files are meant to be shared
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise write_failure(path, err) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def is_leftover(path: Path) -> bool:
    """A temporary file of an interrupted atomic write."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX) and path.is_file()


def remove_leftovers_of(path: str | os.PathLike) -> int:
    """Delete the temporary files that killed writes of `path` left beside it (.NAME.*.tmp); returns how many.
    Only the writer that holds the folder's lock may call this: another writer's temporary file looks the same."""
    path = Path(path)
    removed = 0
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
        if is_leftover(leftover) or leftover.is_symlink():
            leftover.unlink(missing_ok=True)  # unlink removes a link itself, never what it points to
            removed += 1
    return removed


def remove_leftovers(folder: str | os.PathLike) -> int:
    """Delete the temporary files that killed writes left in `folder` and its sub-folders; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.rglob(f".*{TEMP_SUFFIX}"):
        if is_leftover(path):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
