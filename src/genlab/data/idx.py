"""IDX (MNIST-format) files: a strict reader for .gz or raw files, checksums, verified downloads."""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch

from genlab.errors import DataError

# IDX type code -> big-endian numpy dtype (the format stores every number most significant byte first)
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CHUNK_BYTES = 1 << 20


def fix_advice(dataset: str | None) -> str:
    """The end of every bad-file message: how to replace the file."""
    return f"delete it and run `genlab data fetch {dataset}`" if dataset else "delete it and fetch the data again"


def one_line(error: BaseException) -> str:
    """An exception's text on one line (error messages are printed as one line)."""
    return " ".join(str(error).split()) or type(error).__name__


def read_bytes(path: Path, dataset: str | None = None) -> bytes:
    """The file's payload, decompressed when it ends in .gz."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a readable {'gzip ' if path.suffix == '.gz' else ''}file "
                        f"({one_line(e)}); {fix_advice(dataset)}") from None


def parse_idx(payload: bytes, path: Path, dataset: str | None = None) -> torch.Tensor:
    """Check the header (magic, type, dims) and the exact data length, then view the data."""
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0 or payload[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {payload[:4].hex() or 'missing'}); "
                        f"expected 0000 + a type code in {[hex(c) for c in IDX_DTYPES]} + ndim, as in MNIST "
                        f"files; {fix_advice(dataset)}")
    ndim, dtype = payload[3], np.dtype(IDX_DTYPES[payload[2]])
    header = 4 + 4 * ndim
    if ndim == 0 or len(payload) < header:
        raise DataError(f"{path} has a truncated IDX header: {ndim} dims need {header} header bytes but it "
                        f"holds {len(payload)}; {fix_advice(dataset)}")
    dims = [int(d) for d in np.frombuffer(payload, ">u4", count=ndim, offset=4)]
    expected, found = math.prod(dims) * dtype.itemsize, len(payload) - header
    if found != expected:
        problem = "is truncated" if found < expected else "has trailing bytes"
        raise DataError(f"{path} {problem}: dims {dims} need {expected} data bytes but it holds {found}; "
                        f"{fix_advice(dataset)}")
    array = np.frombuffer(payload, dtype, offset=header).reshape(dims)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def read_idx(path: str | os.PathLike, dataset: str | None = None) -> torch.Tensor:
    """Read an IDX file (.gz or raw) into a tensor of its stored type and shape.

    `dataset` names the `genlab data fetch` command that error messages suggest.
    """
    path = Path(path)
    return parse_idx(read_bytes(path, dataset), path, dataset)


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of the file as stored (a .gz is hashed compressed), read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def md5_of(path: str | os.PathLike) -> str:
    """md5 hex digest of the file as stored (what the published .gz checksums are)."""
    return file_digest(path, "md5")


def payload_sha256(path: str | os.PathLike, dataset: str | None = None) -> str:
    """sha256 of the decompressed content: independent of how the file was compressed."""
    return hashlib.sha256(read_bytes(Path(path), dataset)).hexdigest()


def download(url: str, dest: str | os.PathLike, md5: str, timeout: float = 30) -> Path:
    """Fetch url to dest via a temporary file in dest's folder; keep it only when its md5 matches.

    Network failures and mismatches raise DataError; neither leaves a file behind.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            copy_url(url, f, timeout)
        found = md5_of(tmp)
        if found != md5.lower():
            raise DataError(f"checksum mismatch for {url}: expected md5 {md5}, got {found}; the mirror "
                            f"may be damaged or changed, try again later or another mirror")
        os.replace(tmp, dest)
        return dest
    finally:
        Path(tmp).unlink(missing_ok=True)  # nothing left after a successful rename


def copy_url(url: str, out, timeout: float) -> None:
    """Stream the body of url into the binary file out; network errors become DataError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out, CHUNK_BYTES)
    except (urllib.error.URLError, OSError, ValueError) as e:  # ValueError: a malformed URL
        raise DataError(f"could not download {url} ({one_line(e)})") from None
