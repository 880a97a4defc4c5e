"""IDX (MNIST-format) files: a strict reader for .gz or raw files, checksums, verified downloads."""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch

from genlab.errors import DataError

# IDX type code -> big-endian numpy dtype (the format stores every number most significant byte first)
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path: Path) -> bytes:
    """The file's payload, decompressed when it ends in .gz."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a readable {'gzip ' if path.suffix == '.gz' else ''}file ({e}); "
                        f"delete it and fetch the data again") from None


def parse_idx(payload: bytes, path: Path) -> torch.Tensor:
    """Check the header (magic, type, dims) and the exact data length, then view the data."""
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0 or payload[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {payload[:4].hex()}); "
                        f"expected 0000 + type code + ndim, as in MNIST files")
    ndim, dtype = payload[3], np.dtype(IDX_DTYPES[payload[2]])
    header = 4 + 4 * ndim
    if ndim == 0 or len(payload) < header:
        raise DataError(f"{path} has a truncated IDX header; delete it and fetch the data again")
    dims = [int(d) for d in np.frombuffer(payload, ">u4", count=ndim, offset=4)]
    expected, found = math.prod(dims) * dtype.itemsize, len(payload) - header
    if found != expected:
        problem = "is truncated" if found < expected else "has trailing bytes"
        raise DataError(f"{path} {problem}: dims {dims} need {expected} data bytes but it holds {found}; "
                        f"delete it and run `genlab data fetch` again")
    array = np.frombuffer(payload, dtype, offset=header).reshape(dims)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX file (.gz or raw) into a tensor of its stored type and shape."""
    path = Path(path)
    return parse_idx(read_bytes(path), path)


def md5_of(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def payload_sha256(path: Path) -> str:
    """sha256 of the decompressed content: independent of how the file was compressed."""
    return hashlib.sha256(read_bytes(Path(path))).hexdigest()


def download(url: str, dest: str | os.PathLike, md5: str, timeout: float = 30) -> Path:
    """Fetch url to dest via a temporary file; keep it only when its md5 matches."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as response:
            f.write(response.read())
        if md5_of(Path(tmp)) != md5:
            raise DataError(f"checksum mismatch for {url}: expected md5 {md5}, got {md5_of(Path(tmp))}")
        os.replace(tmp, dest)
        return dest
    finally:
        Path(tmp).unlink(missing_ok=True)
