"""What a run directory must be before genlab writes or reads it: written by one process at a time, free of
symbolic links where genlab keeps its files, and at a path every file system can hold and a UTF-8 record can name.

The writer lock is an flock on RUN/.lock, held for the whole command by the commands that write a run's own files
(train, evaluate, report), on the process that writes (rank 0 under torchrun). The holder writes its pid and command
line into the file, so that a refusal names it, and empties the file when done. The kernel drops the lock when its
process ends, however it ends: a killed writer never leaves a run locked. The commands that only read a run and
save their own pictures (sample, reconstruct, explore, serve) take no lock, so they can watch a run that trains.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

from genlab.errors import ConfigError, RunError
from genlab.files import is_leftover, write_failure
from genlab.runs import layout
from genlab.runs.layout import RunLayout
from genlab.world import World, from_rank_zero

NAME_MAX = 255      # bytes in one path component on the common file systems (ext4, XFS, btrfs, tmpfs, APFS)
PATH_MAX = 4096     # bytes in a whole path on Linux, its terminating NUL included
HOLDER_BYTES = 300  # what a refusal quotes of a lock file: a pid and the start of a command line
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP)  # a file system without locks (some NFS mounts): written unguarded


def printable(path: str | os.PathLike | bytes) -> str:
    """A path as one line of text whatever its bytes: bytes that are not UTF-8 as \\xNN, control characters escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


# ---------------------------------------------------------------- a path a run can live at


def check_out_path(out: Path) -> None:
    """A ConfigError, before anything is written, for a run directory no file system can hold (a name over 255
    bytes, a path over 4095) or whose path the run's UTF-8 record and report cannot hold (bytes that are not UTF-8)."""
    raw = os.fsencode(out)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"--out {printable(out)} is not valid UTF-8; a run's {layout.CONFIG} and {layout.REPORT} "
                          f"record its path as UTF-8 text: choose a name of UTF-8 characters") from None
    longest = max(raw.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        raise ConfigError(f"--out has a name of {len(longest)} bytes ({printable(longest[:40])}...); file systems "
                          f"allow at most {NAME_MAX} bytes per name: choose a shorter --out")
    full = len(os.fsencode(Path(out).absolute()))
    if full >= PATH_MAX:
        raise ConfigError(f"--out is {full} bytes long as a full path; file systems allow at most {PATH_MAX - 1}: "
                          f"choose a shorter --out")


# ---------------------------------------------------------------- no links where genlab keeps its files


def check_links(run_dir: str | os.PathLike) -> None:
    """A RunError naming the first symbolic link where genlab keeps its files in `run_dir`: its own names, the
    staged and published epochs and what they hold, everything under the images folder. Links are never followed,
    for reading or for writing."""
    link = next(linked_places(Path(run_dir)), None)
    if link is not None:
        raise RunError(link_refusal(link))


def link_refusal(link: Path) -> str:
    try:
        target = f" (to {printable(os.readlink(link))})"
    except OSError:
        target = ""
    return (f"{printable(link)} is a symbolic link{target}; genlab keeps its own files in a run directory and never "
            f"reads or writes through a link: put the real file or folder there, or remove the link")


def linked_places(run_dir: Path) -> Iterator[Path]:
    """The symbolic links among genlab's places in a run (none for a folder that does not exist)."""
    files = RunLayout(run_dir)
    staged = files.staged()
    yield from (path for path in [run_dir / name for name in layout.OWN_NAMES] + staged if path.is_symlink())
    for folder in [files.images, files.commit, *staged]:
        if folder.is_dir() and not folder.is_symlink():
            yield from links_under(folder)


def links_under(folder: Path) -> Iterator[Path]:
    """Every symbolic link under `folder`, its sub-folders searched too (never through a link; no recursion, so
    a hostile depth of folders cannot exhaust the stack)."""
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                found = [(Path(e.path), e.is_symlink(), e.is_dir(follow_symlinks=False)) for e in entries]
        except OSError as err:
            raise RunError(f"cannot read {printable(current)} ({err.strerror or err}); check its permissions") from None
        for path, is_link, is_dir in found:
            if is_link:
                yield path
            elif is_dir:
                pending.append(path)


# ---------------------------------------------------------------- one writer at a time


def is_own_leftover(path: Path) -> bool:
    """The lock, an epoch staged or published, or a temporary file of a killed write: what genlab alone leaves."""
    return (path.name in (layout.LOCK, layout.COMMIT) or path.name.startswith(layout.STAGING_PREFIX)
            or is_leftover(path))


def is_run_folder(run_dir: Path) -> bool:
    """A folder genlab may write as a run: it holds a run's record, or nothing but what genlab itself leaves."""
    if not run_dir.is_dir():
        return False
    return RunLayout(run_dir).config.is_file() or all(is_own_leftover(p) for p in run_dir.iterdir())


class RunLock:
    """The writer lock of one run, held by this process until release()."""

    def __init__(self, run_dir: Path, fd: int, made: list[Path]) -> None:
        self.run_dir, self.fd, self.made = run_dir, fd, made  # made: the folders claim() created, deepest first

    def release(self) -> None:
        """Let go, leaving the lock file empty; a run folder the claim made and nothing else filled is removed."""
        try:
            if self.made and [p.name for p in self.run_dir.iterdir()] == [layout.LOCK]:
                RunLayout(self.run_dir).lock.unlink()
                remove_empty(self.made)
            else:
                os.ftruncate(self.fd, 0)
        except OSError:
            pass  # the folder went away or turned read-only under us: there is nothing left to tidy
        finally:
            os.close(self.fd)  # closing the descriptor drops the flock


def remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # something else lives there now: it stays, and so do the folders above it


def claim(run_dir: Path, create: bool = False) -> RunLock | None:
    """Take the run's writer lock, or refuse in one line naming the process that holds it. With `create` the
    folder of a new run is made first. None, with nothing taken or written, where `run_dir` is no folder genlab
    may write as a run: the caller's own checks then refuse it."""
    if create:
        check_out_path(run_dir)
    for _ in range(3):  # the lock file was removed while we took it (a failed fresh start tidying up): again
        made = make_folders(run_dir) if create else []
        if not is_run_folder(run_dir):
            return None
        fd = open_lock(run_dir)
        if not take(fd, run_dir):
            return RunLock(run_dir, fd, made)  # a file system without locks: written unguarded
        if is_still_the_lock(fd, run_dir):
            write_holder(fd)
            return RunLock(run_dir, fd, made)
        os.close(fd)
    raise RunError(f"the lock file of {printable(run_dir)} kept changing while it was taken; retry")


def make_folders(run_dir: Path) -> list[Path]:
    """Create `run_dir` and the missing folders above it; those made, deepest first."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"--out {printable(run_dir)} is a file, not a folder; choose another --out")
    made = []
    for folder in [run_dir, *run_dir.parents]:
        if folder.exists() or folder.is_symlink():
            break
        made.append(folder)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"cannot create --out {printable(run_dir)} ({err.strerror or err}); choose another --out") from None
    return made


def open_lock(run_dir: Path) -> int:
    path = RunLayout(run_dir).lock
    try:  # O_NOFOLLOW: a lock file that is a link is refused, never created or written at its target
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise RunError(link_refusal(path)) from None
        raise write_failure(path, err) from None


def take(fd: int, run_dir: Path) -> bool:
    """flock the open lock file without waiting; False where the file system has no locks."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        holder = read_holder(fd)
        os.close(fd)
        raise RunError(f"{printable(run_dir)} is being written by another genlab process ({holder}); one process "
                       f"writes a run at a time: wait for it to finish, or stop it, then retry") from None
    except OSError as err:
        if err.errno in NO_LOCKS:
            return False
        os.close(fd)
        raise write_failure(RunLayout(run_dir).lock, err) from None


def is_still_the_lock(fd: int, run_dir: Path) -> bool:
    """Whether the file we locked is still the run's lock file (not one removed and made anew meanwhile)."""
    try:
        now = os.stat(RunLayout(run_dir).lock, follow_symlinks=False)
    except FileNotFoundError:
        return False
    locked = os.fstat(fd)
    return (locked.st_dev, locked.st_ino) == (now.st_dev, now.st_ino)


def write_holder(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder_line().encode("utf-8", "backslashreplace"), 0)
    except OSError:
        pass  # a full disk: the lock holds all the same, and a refusal says its holder wrote no pid


def holder_line() -> str:
    """'pid 4242: genlab train vae --resume --out runs/vae': who holds the lock, as the file records it."""
    argv = sys.argv if sys.argv and sys.argv[0] else ["python"]
    command = shlex.join([Path(argv[0]).name, *argv[1:]])
    return f"pid {os.getpid()}: {command[:HOLDER_BYTES - 40]}\n"


def read_holder(fd: int) -> str:
    """The holder as its lock file names it, as one short printable line."""
    try:
        text = os.pread(fd, HOLDER_BYTES, 0).decode("utf-8", "replace")
    except OSError:
        text = ""
    first = "".join(c for c in (text.splitlines() or [""])[0] if c.isprintable()).strip()
    return first or "it has not written its pid yet"


@contextlib.contextmanager
def one_writer(run_dir: str | os.PathLike, world: World = World(), create: bool = False) -> Iterator[None]:
    """Hold the run's writer lock for the block, on the process that writes (rank 0 under torchrun); a refusal
    reaches every process of the job as one line. With `create`, the folder of a new run is made (and removed
    again if the block leaves nothing in it)."""
    held: list[RunLock | None] = []
    from_rank_zero(world, lambda: held.append(claim(Path(run_dir), create)))
    try:
        yield
    finally:
        for lock in held:
            if lock is not None:
                lock.release()
