"""The explorer's JSON/PNG API over one trained run: pure request -> response, no sockets (see server.py).

Every bad request gets a 4xx and a one-line reason in {"error": ...}; nothing a client sends reaches a 500
(and should a server fault slip through, `handle` still answers a one-line JSON 500 instead of dropping the call).
"""
from __future__ import annotations

import io
import json
import math
import sys
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import torch
from PIL import Image

from genlab.data.batches import to_unit_float
from genlab.errors import DataError, RunError
from genlab.images import PixelLimitError, make_grid, open_image, pil_to_tensor, to_pil
from genlab.latent import decode_images, encode_means, pca_2d
from genlab.models.contract import GAN, AutoEncoder, Generative
from genlab.runs.store import Run

MAX_UPLOAD = 2 * 1024 * 1024   # bytes of an uploaded image
MAX_UPLOAD_PIXELS = 4096 * 4096  # pixels of an uploaded image (a small PNG can decode to gigabytes)
MAX_JSON = 64 * 1024           # bytes of a JSON body
MAX_LIST = 64                  # test images per listing
SCATTER_POINTS = 2000          # test codes drawn under the 2-d pad
SLIDERS = 16                   # latent dimensions that get a slider


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


class BadRequest(Exception):
    """A client error: status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, "application/json", json.dumps(value).encode())


def png_bytes(image: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


class Explorer:
    """A loaded run with its test set, answering the explorer's API calls."""

    def __init__(self, run: Run, data_dir: str | None = None) -> None:
        self.run, self.model = run, run.model.eval()
        if not isinstance(self.model, (AutoEncoder, GAN)):
            raise RunError(f"a {run.config['model']} run has no latent space to explore")
        data = run.dataset(data_dir)
        self.test_x, self.test_y, self.classes = run.test_images(data), data.test_y, data.classes
        self.image_shape = tuple(data.image_shape)
        self.attribute_names, self.test_attributes = tuple(data.attribute_names), data.test_attributes
        self.latent_dim = int(self.model.latent_dim)
        self._codes: torch.Tensor | None = None
        self._codes_lock = threading.Lock()  # the page asks for several means at once: encode the test set once
        self._scatter: list | None = None

    def info(self) -> dict[str, Any]:
        kind = "gan" if isinstance(self.model, GAN) else "autoencoder"
        return {"model": self.run.config["model"], "kind": kind, "latent_dim": self.latent_dim,
                "has_prior": isinstance(self.model, Generative),  # a plain autoencoder has none to sample
                "sliders": min(SLIDERS, self.latent_dim), "classes": list(self.classes),
                "image_shape": list(self.image_shape), "test_images": int(self.test_x.shape[0]),
                # an attribute's vector is made of posterior codes: a GAN, with no encoder, gets no sliders
                "attributes": [] if isinstance(self.model, GAN) else list(self.attribute_names)}

    def decode(self, z: list[float]) -> bytes:
        codes = torch.tensor([z], dtype=torch.float32)
        return png_bytes(decode_images(self.model, codes)[0].cpu())

    def encode(self, image: Image.Image) -> list[float]:
        if isinstance(self.model, GAN):
            raise BadRequest(400, "a GAN has no encoder: it cannot place an uploaded image in its latent space")
        x = pil_to_tensor(image.resize(self.image_shape[:0:-1]), self.image_shape[0])
        return encode_means(self.model, to_unit_float(x)[None])[0].tolist()

    def test_image(self, index: int) -> bytes:
        if not 0 <= index < self.test_x.shape[0]:
            raise BadRequest(404, f"test image {index} does not exist: there are {self.test_x.shape[0]} (0..n-1)")
        return png_bytes(to_unit_float(self.test_x[index]))

    def codes(self, what: str) -> torch.Tensor:
        """Every test image's posterior mean, (N, latent_dim) on the CPU: encoded once, on first use."""
        if isinstance(self.model, GAN):
            raise BadRequest(400, f"a GAN has no encoder: {what}")
        with self._codes_lock:
            if self._codes is None:
                self._codes = encode_means(self.model, to_unit_float(self.test_x)).cpu()
        return self._codes

    def test_codes(self, index: int) -> list[float]:
        codes = self.codes("test images have no codes")
        self.test_image(index)  # range check
        return codes[index].tolist()

    def listing(self, offset: int, count: int, label: int | None = None) -> list[dict[str, Any]]:
        """Up to `count` test images from `offset` on; with `label`, only that class's (searching the whole set)."""
        if label is None:
            indices = range(offset, min(offset + count, self.test_x.shape[0]))
        else:
            self.check_class(label)
            matches = (self.test_y[offset:] == label).nonzero().flatten()[:count] + offset
            indices = matches.tolist()
        return [{"index": i, "label": int(self.test_y[i]), "class": self.classes[int(self.test_y[i])]}
                for i in indices]

    def check_class(self, label: int) -> None:
        if not 0 <= label < len(self.classes):
            raise BadRequest(400, f"class {label} does not exist: there are {len(self.classes)} (0..n-1)")

    def scatter(self) -> list[list[float]]:
        """[x, y, label] for the first test images' codes (PCA beyond 2-d); computed once."""
        codes = self.codes("there is no test-set scatter")
        if self._scatter is None:
            n = min(SCATTER_POINTS, codes.shape[0])
            xy = pca_2d(codes[:n])[0]
            self._scatter = [[round(a, 4), round(b, 4), y] for (a, b), y in zip(xy.tolist(), self.test_y[:n].tolist())]
        return self._scatter

    def class_mean(self, label: int) -> list[float]:
        """Mean posterior code of all test images of one class."""
        codes = self.codes("classes have no mean code")
        self.check_class(label)
        chosen = self.test_y == label
        if not chosen.any():
            raise BadRequest(400, f"the test set has no image of class {self.classes[label]}")
        return codes[chosen].mean(0).tolist()

    def attribute_vector(self, name: str) -> dict[str, Any]:
        """The named attribute's vector: mean posterior code of the test images with it minus that of those without.

        {"name", "vector": latent_dim floats, "with", "without": test images on each side}.
        """
        codes = self.codes("attributes have no vector")
        if name not in self.attribute_names:
            have = (f"this run's are {', '.join(map(repr, self.attribute_names))}" if self.attribute_names else
                    "this run's dataset has none (faces, celeba:PATH and folder: data with attributes.csv have them)")
            raise BadRequest(404, f"no attribute {name!r}; {have}")
        has = self.test_attributes[:, self.attribute_names.index(name)]
        with_it, without = int(has.sum()), int((~has).sum())
        if not with_it or not without:
            raise BadRequest(400, f"the test set has no image {'with' if not with_it else 'without'} {name!r}, "
                                  f"so {name!r} has no vector (with minus without)")
        return {"name": name, "vector": (codes[has].mean(0) - codes[~has].mean(0)).tolist(),
                "with": with_it, "without": without}

    def grid(self, codes: list[list[float]]) -> bytes:
        images = decode_images(self.model, torch.tensor(codes, dtype=torch.float32)).cpu()
        return png_bytes(make_grid(images, nrow=len(codes)))


# ---------------------------------------------------------------- request parsing


def parse_json(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_JSON:
        raise BadRequest(413, f"JSON body of {len(body)} bytes is over the {MAX_JSON}-byte limit")
    try:
        value = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # bad UTF-8 or JSON, an over-long integer, nesting too deep
        raise BadRequest(400, f"malformed JSON: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not isinstance(value, dict):
        raise BadRequest(400, "the JSON body must be an object, e.g. {\"z\": [0.0, 1.5]}")
    return value


def check_code(value: Any, latent_dim: int, name: str = "z") -> list[float]:
    """A list of latent_dim finite numbers, else a 400 saying which rule it broke."""
    if not isinstance(value, list):
        raise BadRequest(400, f"{name} must be a list of {latent_dim} numbers")
    if len(value) != latent_dim:
        raise BadRequest(400, f"{name} has {len(value)} numbers but this model's latent space has {latent_dim}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise BadRequest(400, f"{name} must hold only numbers")
    try:
        numbers = [float(v) for v in value]
    except OverflowError:  # an integer beyond float range, e.g. 10**400
        numbers = [math.inf]
    if not all(math.isfinite(v) for v in numbers):
        raise BadRequest(400, f"{name} holds a non-finite number (NaN, infinity or beyond float range)")
    return numbers


def query_int(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name, [str(default)])[-1]
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(400, f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(400, f"{name} must be between {low} and {high}, got {value}")
    return value


def query_text(query: dict[str, list[str]], name: str) -> str:
    """A required query parameter as given (the last, when repeated), else a 400."""
    if name not in query:
        raise BadRequest(400, f"{name} is required, e.g. ?{name}=Smiling")
    return query[name][-1]


def read_upload(body: bytes) -> Image.Image:
    """A PNG or JPEG upload (told by its content, not its name) decoded under MAX_UPLOAD_PIXELS, else a 413 or 415."""
    if len(body) > MAX_UPLOAD:
        raise BadRequest(413, f"upload of {len(body)} bytes is over the {MAX_UPLOAD}-byte limit")
    try:
        return open_image(io.BytesIO(body), "upload", MAX_UPLOAD_PIXELS)
    except PixelLimitError as e:
        raise BadRequest(413, str(e)) from None
    except DataError:
        raise BadRequest(415, "the upload is not a PNG or JPEG image (other formats are refused); "
                              "send the bytes of a .png or .jpg file") from None


# ---------------------------------------------------------------- routing


def handle(explorer: Explorer, method: str, path: str, query_string: str, body: bytes) -> Response:
    """One API call -> its response; client errors become 4xx JSON with a one-line reason."""
    try:
        return route(explorer, method, path, parse_qs(query_string, keep_blank_values=True), body)
    except BadRequest as e:
        return json_response({"error": e.reason}, e.status)
    except Exception as e:  # a server fault: the page still gets one line, the terminal the details
        print(f"genlab serve: {method} {path} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return json_response({"error": f"internal error ({type(e).__name__}); see the terminal running genlab serve"},
                             500)


def route(explorer: Explorer, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Response:
    n = int(explorer.test_x.shape[0])
    if (method, path) == ("GET", "/api/info"):
        return json_response(explorer.info())
    if (method, path) == ("POST", "/api/decode"):
        z = check_code(parse_json(body).get("z"), explorer.latent_dim)
        return Response(200, "image/png", explorer.decode(z))
    if (method, path) == ("POST", "/api/decode-grid"):
        codes = parse_json(body).get("codes")
        if not isinstance(codes, list) or not 1 <= len(codes) <= MAX_LIST:
            raise BadRequest(400, f"codes must be a list of 1 to {MAX_LIST} codes")
        return Response(200, "image/png", explorer.grid([check_code(c, explorer.latent_dim, "each code")
                                                          for c in codes]))
    if (method, path) == ("POST", "/api/encode"):
        return json_response({"z": explorer.encode(read_upload(body))})
    if (method, path) == ("GET", "/api/test-images"):
        offset = query_int(query, "offset", 0, 0, max(n - 1, 0))
        label = query_int(query, "class", -1, -1, 10**6) if "class" in query else None
        return json_response({"images": explorer.listing(offset, query_int(query, "count", 16, 1, MAX_LIST), label)})
    if (method, path) == ("GET", "/api/test-image"):
        return Response(200, "image/png", explorer.test_image(query_int(query, "index", 0, -1, 10**9)))
    if (method, path) == ("GET", "/api/test-code"):
        return json_response({"z": explorer.test_codes(query_int(query, "index", 0, -1, 10**9))})
    if (method, path) == ("GET", "/api/class-mean"):
        return json_response({"z": explorer.class_mean(query_int(query, "class", 0, -1, 10**6))})
    if (method, path) == ("GET", "/api/scatter"):
        return json_response({"points": explorer.scatter(), "classes": list(explorer.classes)})
    if (method, path) == ("GET", "/api/attribute-vector"):
        return json_response(explorer.attribute_vector(query_text(query, "name")))
    if path.startswith("/api/"):
        known = ("/api/info", "/api/decode", "/api/decode-grid", "/api/encode", "/api/test-images",
                 "/api/test-image", "/api/test-code", "/api/scatter", "/api/class-mean", "/api/attribute-vector")
        if path in known:
            raise BadRequest(405, f"{method} is not allowed on {path}")
        raise BadRequest(404, f"no API endpoint {path!r}")
    raise BadRequest(404, f"nothing at {path!r}")
