"""IDX (MNIST-format) files: a strict reader for .gz or raw files, checksums, verified downloads.

The reader trusts nothing in a file: the header's dimension count and sizes are checked against limits
before anything is allocated, and a .gz is decompressed as a stream that stops at the size the header
declares, into one buffer of that size, so a small hostile file cannot claim gigabytes of memory.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from genlab.errors import DataError
from genlab.files import atomic_write

# IDX type code -> big-endian numpy dtype (the format stores every number most significant byte first)
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CHUNK_BYTES = 1 << 20
MAX_NDIM = 8                  # dimensions of one IDX array (MNIST files have 1 or 3)
MAX_IDX_BYTES = 1 << 30       # bytes of one IDX array's data (Fashion-MNIST's largest file holds 47 MB)
READ_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


def fix_advice(dataset: str | None) -> str:
    """The end of every bad-file message: how to replace the file."""
    return f"delete it and run `genlab data fetch {dataset}`" if dataset else "delete it and fetch the data again"


def one_line(error: BaseException) -> str:
    """An exception's text on one line (error messages are printed as one line)."""
    return " ".join(str(error).split()) or type(error).__name__


def open_payload(path: Path) -> BinaryIO:
    """The file's payload as a binary stream, decompressed on the fly when it ends in .gz."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def unreadable(path: Path, error: BaseException, dataset: str | None) -> DataError:
    return DataError(f"{path} is not a readable {'gzip ' if path.suffix == '.gz' else ''}file "
                     f"({one_line(error)}); {fix_advice(dataset)}")


def read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Up to size bytes (fewer only at the end of the stream), read in chunks."""
    parts, left = [], size
    while left > 0:
        part = stream.read(min(left, CHUNK_BYTES))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def count_rest(stream: BinaryIO, cap: int = CHUNK_BYTES) -> int:
    """Bytes left in the stream, counted (not kept) up to cap; cap + 1 means 'more than cap'."""
    return len(stream.read(cap + 1))


def parse_header(head: bytes, path: Path, dataset: str | None, max_bytes: int) -> tuple[np.dtype, list[int]]:
    """(dtype, dims) from an IDX header, each checked against the limits; `head` holds at least 4 bytes."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {head[:4].hex() or 'missing'}); "
                        f"expected 0000 + a type code in {[hex(c) for c in IDX_DTYPES]} + ndim, as in MNIST "
                        f"files; {fix_advice(dataset)}")
    ndim, dtype = head[3], np.dtype(IDX_DTYPES[head[2]])
    if not 1 <= ndim <= MAX_NDIM:
        raise DataError(f"{path} declares {ndim} dimensions; an IDX array here has 1 to {MAX_NDIM} "
                        f"(MNIST files have 1 or 3); {fix_advice(dataset)}")
    if len(head) < 4 + 4 * ndim:
        raise DataError(f"{path} has a truncated IDX header: {ndim} dims need {4 + 4 * ndim} header bytes but it "
                        f"holds {len(head)}; {fix_advice(dataset)}")
    dims = [int(d) for d in np.frombuffer(head, ">u4", count=ndim, offset=4)]
    span = math.prod(max(d, 1) for d in dims) * dtype.itemsize  # zeros ignored: numpy refuses such shapes too
    if span > max_bytes:
        raise DataError(f"{path} declares dims {dims} of {dtype.itemsize}-byte values ({span} bytes), over the "
                        f"{max_bytes}-byte limit of one IDX array; {fix_advice(dataset)}")
    return dtype, dims


def stream_header(stream: BinaryIO, path: Path, dataset: str | None, max_bytes: int) -> tuple[np.dtype, list[int]]:
    """Read and check the header at the start of a payload stream: (dtype, dims)."""
    head = read_exactly(stream, 4)
    head += read_exactly(stream, 4 * head[3]) if len(head) == 4 else b""
    return parse_header(head, path, dataset, max_bytes)


def read_header(path: str | os.PathLike, dataset: str | None = None,
                max_bytes: int = MAX_IDX_BYTES) -> tuple[np.dtype, list[int]]:
    """An IDX file's (dtype, dims), checked against the limits; only the header is decompressed."""
    path = Path(path)
    try:
        with open_payload(path) as stream:
            return stream_header(stream, path, dataset, max_bytes)
    except READ_ERRORS as e:
        raise unreadable(path, e, dataset) from None


def read_into(stream: BinaryIO, buffer: memoryview) -> int:
    """Fill buffer from the stream in chunks (no chunk is kept); the bytes read, fewer only at its end."""
    filled = 0
    while filled < len(buffer):
        n = stream.readinto(buffer[filled:filled + CHUNK_BYTES])
        if not n:
            break
        filled += n
    return filled


def read_idx(path: str | os.PathLike, dataset: str | None = None, max_bytes: int = MAX_IDX_BYTES,
             dims: list[int] | None = None) -> torch.Tensor:
    """Read an IDX file (.gz or raw) into a tensor of its stored type and shape.

    `dataset` names the `genlab data fetch` command that error messages suggest; at most `max_bytes`
    of data are read (the header is checked first, then exactly what it declares is decompressed, straight
    into the one buffer the tensor keeps). With `dims`, a header declaring other dims is refused first.
    """
    path = Path(path)
    try:
        with open_payload(path) as stream:
            dtype, declared = stream_header(stream, path, dataset, max_bytes)
            if dims is not None and declared != list(dims):
                raise DataError(f"{path} declares dims {declared}, expected {list(dims)}; {fix_advice(dataset)}")
            expected = math.prod(declared) * dtype.itemsize
            buffer = np.empty(expected, np.uint8)
            found = read_into(stream, memoryview(buffer))
            extra = count_rest(stream) if found == expected else 0
    except READ_ERRORS as e:
        raise unreadable(path, e, dataset) from None
    if found != expected or extra:
        problem = "is truncated" if found < expected else "has trailing bytes"
        holds = f"more than {found + extra - 1}" if extra > CHUNK_BYTES else str(found + extra)
        raise DataError(f"{path} {problem}: dims {declared} need {expected} data bytes but it holds {holds}; "
                        f"{fix_advice(dataset)}")
    array = buffer.view(dtype)
    if not dtype.isnative:  # big-endian values turned native in place: no second copy of the payload
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return torch.from_numpy(array.reshape(declared))


def class_labels(labels: torch.Tensor, classes: int, path: Path, dataset: str | None = None) -> torch.Tensor:
    """int64 labels (N,) from an IDX label array: each must be a whole number in 0..classes-1."""
    if labels.dtype.is_floating_point and not bool((labels.isfinite() & (labels == labels.round())).all()):
        raise DataError(f"{path} holds labels that are not whole numbers (fractions, NaN or infinity); "
                        f"expected class indices 0..{classes - 1}; {fix_advice(dataset)}")
    # one-off host reads at load time, not on a hot path; guarded because min() of nothing is an error
    if labels.numel() and (float(labels.min()) < 0 or float(labels.max()) > classes - 1):
        raise DataError(f"{path} holds labels outside 0..{classes - 1}; {fix_advice(dataset)}")
    return labels.long()


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of the file as stored (a .gz is hashed compressed), read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def md5_of(path: str | os.PathLike) -> str:
    """md5 hex digest of the file as stored (what the published .gz checksums are)."""
    return file_digest(path, "md5")


def payload_sha256(path: str | os.PathLike, dataset: str | None = None) -> str:
    """sha256 of the decompressed content: independent of how the file was compressed."""
    path, digest = Path(path), hashlib.sha256()
    try:
        with open_payload(path) as stream:
            while chunk := stream.read(CHUNK_BYTES):  # streamed: a compressed file may inflate to gigabytes
                digest.update(chunk)
    except READ_ERRORS as e:
        raise unreadable(path, e, dataset) from None
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, md5: str, timeout: float = 30) -> Path:
    """Fetch url to dest through `genlab.files.atomic_write`; publish it only when its md5 matches.

    Network failures and mismatches raise DataError; neither leaves a file behind.
    """
    def fetch(f: BinaryIO) -> None:
        digest = hashlib.md5()

        class Hashed:  # the bytes go to the file and through the checksum on the way
            def write(self, chunk: bytes) -> int:
                digest.update(chunk)
                return f.write(chunk)

        copy_url(url, Hashed(), timeout)
        found = digest.hexdigest()
        if found != md5.lower():
            raise DataError(f"checksum mismatch for {url}: expected md5 {md5}, got {found}; the mirror "
                            f"may be damaged or changed, try again later or another mirror")

    return atomic_write(dest, fetch)


def copy_url(url: str, out, timeout: float) -> None:
    """Stream the body of url into the binary file out; network errors become DataError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out, CHUNK_BYTES)
    except (urllib.error.URLError, OSError, ValueError) as e:  # ValueError: a malformed URL
        raise DataError(f"could not download {url} ({one_line(e)})") from None
