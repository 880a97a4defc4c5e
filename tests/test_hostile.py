"""Generated hostile input (hypothesis) for the IDX reader and every explorer endpoint.

Only genlab's own one-line errors or 4xx answers may come back, the IDX reader allocates no more than
its byte limit, and the server keeps answering. Examples are bounded and derandomized, so the suite
takes seconds and every run of `make test` tries the same inputs.
"""
from __future__ import annotations

import gzip
import io
import json
import socket
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from genlab.cli import main
from genlab.data import load_dataset
from genlab.data.idx import IDX_DTYPES, class_labels, read_idx
from genlab.errors import DataError
from genlab.runs.store import load_run
from genlab.serve.api import Explorer, handle
from genlab.serve.server import make_server

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LIMIT = 1 << 20  # the byte limit the reader is given here: a file may claim far more
ENDPOINTS = ["/api/info", "/api/decode", "/api/decode-grid", "/api/encode", "/api/test-images",
             "/api/test-image", "/api/test-code", "/api/class-mean", "/api/scatter", "/api/attribute-vector"]


# ---------------------------------------------------------------- IDX files


def header(type_code: int, dims: list[int]) -> bytes:
    return bytes([0, 0, type_code, len(dims) % 256]) + np.array(dims, ">u4").tobytes()


dims = st.lists(st.one_of(st.integers(0, 40), st.sampled_from([2**16, 2**31 - 1, 2**32 - 1])), max_size=70)
idx_files = st.one_of(
    st.binary(max_size=300),                                                          # noise
    st.builds(lambda code, d, tail: header(code, d) + tail,                          # plausible headers
              st.sampled_from(sorted(IDX_DTYPES)) | st.integers(0, 255), dims, st.binary(max_size=2000)),
    st.builds(lambda d, cut, extra: (header(0x08, d) + bytes(int(np.prod(d)) if len(d) else 0))[:cut] + extra,
              st.lists(st.integers(0, 12), min_size=1, max_size=4), st.integers(0, 5000), st.binary(max_size=8)),
    st.builds(lambda code, d: header(code, d) + exact_data(code, d),                  # data exactly as declared
              st.sampled_from(sorted(IDX_DTYPES)),
              st.lists(st.sampled_from([0, 1, 2, 3, 2**32 - 1]), min_size=1, max_size=70)),
)


def exact_data(code: int, dims: list[int]) -> bytes:
    """The zero bytes a header declares, when that is a few kilobytes; else none."""
    size = int(np.prod(np.array(dims, dtype=object))) * np.dtype(IDX_DTYPES[code]).itemsize
    return bytes(size) if size <= 4096 else b""


def gzip_bomb(declared: int, zeros: int) -> bytes:
    """A .gz whose header declares `declared` bytes and which inflates to `zeros` more."""
    return gzip.compress(header(0x08, [declared]) + bytes(zeros), compresslevel=1, mtime=0)


def read_or_refuse(path: Path) -> torch.Tensor | None:
    """The reader's tensor or None after its own one-line DataError naming the file; nothing else escapes."""
    try:
        return read_idx(path, max_bytes=LIMIT)
    except DataError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return None


@FUZZ
@given(payload=idx_files, compressed=st.booleans(), damage=st.integers(0, 40))
def test_idx_reader_on_generated_files(tmp_path_factory, payload, compressed, damage) -> None:
    path = tmp_path_factory.mktemp("idx") / ("f.gz" if compressed else "f")
    data = gzip.compress(payload, mtime=0) if compressed else payload
    if compressed and damage:  # flip a byte of the compressed stream (damaged framing or content)
        data = bytearray(data)
        data[damage % len(data)] ^= 0xA5
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        tensor = read_or_refuse(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * LIMIT, f"reading {len(data)} bytes took {peak} bytes"
    if tensor is not None:
        assert tensor.numel() * tensor.element_size() <= LIMIT and tensor.dim() >= 1


@settings(FUZZ, max_examples=12)
@given(declared=st.integers(0, 4 * LIMIT), zeros=st.integers(0, 8 * LIMIT))
def test_idx_reader_on_generated_gzip_bombs(tmp_path_factory, declared, zeros) -> None:
    path = tmp_path_factory.mktemp("bomb") / "bomb.gz"
    path.write_bytes(gzip_bomb(declared, zeros))
    tracemalloc.start()
    try:
        tensor = read_or_refuse(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * LIMIT, f"a bomb of {zeros} bytes took {peak} bytes"
    assert (tensor is not None) == (declared == zeros and declared <= LIMIT)


@FUZZ
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-300, 300), max_size=20),
       dtype=st.sampled_from(["uint8", "int8", "int16", "int32", "float32", "float64"]))
def test_labels_are_whole_class_indices_or_refused(values, dtype) -> None:
    with np.errstate(all="ignore"):
        labels = torch.from_numpy(np.array(values, dtype=np.float64).astype(dtype))
    try:
        checked = class_labels(labels, 10, Path("labels-idx1-ubyte"))
    except DataError as e:
        assert "labels-idx1-ubyte" in str(e) and "\n" not in str(e)
        return
    assert checked.dtype == torch.int64 and bool(((checked >= 0) & (checked <= 9)).all())
    assert torch.equal(checked.double(), labels.double())  # nothing truncated or wrapped


# ---------------------------------------------------------------- folder datasets


def picture(kind: str, seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((24, 16), 30 + seed % 50).convert("RGB" if seed % 2 else "L").save(buffer, format=kind)
    return buffer.getvalue()


@settings(FUZZ, max_examples=100)
@given(kind=st.sampled_from(["PNG", "JPEG"]), seed=st.integers(0, 99),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=6),
       cut=st.integers(0, 10**6))
def test_folder_reader_on_damaged_images(tmp_path_factory, kind, seed, flips, cut) -> None:
    root = tmp_path_factory.mktemp("folder")
    for i in range(3):
        (root / f"good{i}.png").write_bytes(picture("PNG", i))
    data = bytearray(picture(kind, seed))
    for at, mask in flips:  # damage anywhere: header, chunk lengths, compressed pixels
        data[at % len(data)] ^= mask
    (root / "damaged.png").write_bytes(bytes(data[:max(cut % (len(data) + 1), 1)]))
    try:
        loaded = load_dataset(f"folder:{root}", image_size=8)
    except DataError as e:
        assert "damaged.png" in str(e) and "\n" not in str(e), str(e)
        return
    assert loaded.train_x.shape[0] + loaded.test_x.shape[0] == 4


# ---------------------------------------------------------------- explorer endpoints


@pytest.fixture(scope="module")
def explorer(tmp_path_factory) -> Explorer:
    out = tmp_path_factory.mktemp("hostile") / "vae"
    assert main(["train", "vae", "--data", "shapes", "--epochs", "1", "--max-steps", "2", "--latent-dim", "3",
                 "--out", str(out)]) == 0
    return Explorer(load_run(out))


def image_bytes(kind: str, width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 90).save(buffer, format=kind)
    return buffer.getvalue()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=4),
                           max_leaves=30)
bodies = st.one_of(
    st.binary(max_size=400),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["z", "codes"]), json_values, max_size=2).map(lambda v: json.dumps(v).encode()),
    st.builds(image_bytes, st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF"]), st.integers(1, 64),
              st.integers(1, 64)),
    st.builds(lambda b, cut: b[:cut], st.builds(image_bytes, st.sampled_from(["PNG", "JPEG"]), st.integers(1, 40),
                                                st.integers(1, 40)), st.integers(0, 400)),
)
query_value = st.one_of(st.integers(-10**12, 10**12).map(str), st.text(max_size=12))
queries = st.lists(st.tuples(st.sampled_from(["index", "offset", "count", "class", "name", "x"]), query_value),
                   max_size=4)


@settings(FUZZ, max_examples=600)
@given(method=st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE"]),
       path=st.sampled_from(ENDPOINTS) | st.text(max_size=20).map(lambda t: "/api/" + t),
       query=queries, body=bodies)
def test_every_endpoint_answers_generated_requests_with_200_or_a_one_line_4xx(explorer, method, path, query,
                                                                               body) -> None:
    from urllib.parse import urlencode

    response = handle(explorer, method, path, urlencode(query), body)
    assert response.status < 500, response.body[:200]
    if response.status >= 400:
        error = json.loads(response.body)["error"]
        assert error and "\n" not in error
    else:
        assert response.content_type in ("application/json", "image/png")


@pytest.fixture(scope="module")
def served(explorer):
    server = make_server(explorer, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


# raw bytes on the socket: request lines, headers and bodies as a hostile client might send them
raw_requests = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda method, path, headers, body: (f"{method} {path} HTTP/1.0\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers)).encode("utf-8", "replace") + b"\r\n" + body,
              st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "G\x00T", ""]),
              st.sampled_from(ENDPOINTS + ["/", "/x", "*", "//api/info"]) | st.text(max_size=30),
              st.lists(st.tuples(st.sampled_from(["Host", "Content-Length", "Content-Type", "X"]),
                                 st.text(max_size=20)), max_size=4),
              st.binary(max_size=200)),
)


@settings(FUZZ, max_examples=200)
@given(request=raw_requests)
def test_the_server_answers_generated_raw_requests_and_stays_up(served, request) -> None:
    port = served.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        try:
            connection.sendall(request)
            connection.shutdown(socket.SHUT_WR)  # the request is all there is: a short body ends here
        except OSError:  # the server may answer and close before the whole request is sent
            pass
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.0 ") else None
    assert status is None or status < 500 or status in (501, 505), answer[:300]
    if status is None:  # closed without an answer: only for a request that never completed
        assert b"\r\n\r\n" not in request and b"\n\n" not in request, (request, answer)
    info = f"GET /api/info HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        connection.sendall(info)
        assert connection.recv(12) == b"HTTP/1.0 200"

