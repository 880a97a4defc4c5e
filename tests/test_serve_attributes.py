"""The explorer's attribute sliders, API side: a faces run lists its attributes by name and answers each one's vector
(mean test code with it - mean test code without it); unknown names, one-sided attributes and GANs get one line."""
from __future__ import annotations

import io
import json

import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.data.batches import to_unit_float
from genlab.data.faces import ATTRIBUTE_NAMES
from genlab.latent import encode_means
from genlab.runs.store import load_run
from genlab.serve.api import Explorer, handle


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A tiny conv-vae and dcgan on faces:300 (64x64 RGB, with attributes) and a vae on shapes (none)."""
    root = tmp_path_factory.mktemp("serve-attributes")
    made = {}
    for name, model, data, extra in (("faces-vae", "conv-vae", "faces:300", ["--conv-channels", "8", "16"]),
                                     ("faces-gan", "dcgan", "faces:300", ["--dim", "8"]),
                                     ("shapes-vae", "vae", "shapes", ["--latent-dim", "3"])):
        out = root / name
        assert main(["train", model, "--data", data, "--epochs", "1", "--max-steps", "3", *extra,
                     "--out", str(out)]) == 0
        made[name] = out
    return made


@pytest.fixture(scope="module")
def faces(runs) -> Explorer:
    return Explorer(load_run(runs["faces-vae"]))


def get(explorer: Explorer, path: str, query: str = "") -> tuple[int, dict]:
    response = handle(explorer, "GET", path, query, b"")
    assert response.content_type == "application/json"
    return response.status, json.loads(response.body)


def test_info_lists_the_attributes_by_name(faces) -> None:
    status, info = get(faces, "/api/info")
    assert status == 200 and info["attributes"] == list(ATTRIBUTE_NAMES) and "Smiling" in info["attributes"]
    assert info["image_shape"] == [3, 64, 64]


@pytest.mark.parametrize("name", ["Smiling", "Eyeglasses", "Gray_Hair"])
def test_the_vector_is_the_mean_code_with_the_attribute_minus_without(faces, runs, name) -> None:
    run = load_run(runs["faces-vae"])
    data = run.dataset()
    has = data.attribute(name)[1]
    codes = encode_means(run.model.eval(), to_unit_float(run.test_images(data))).cpu()
    expected = codes[has].mean(0) - codes[~has].mean(0)
    status, answer = get(faces, "/api/attribute-vector", f"name={name}")
    assert status == 200 and answer["name"] == name
    assert (answer["with"], answer["without"]) == (int(has.sum()), int((~has).sum()))
    assert answer["with"] > 0 and answer["without"] > 0
    assert torch.allclose(torch.tensor(answer["vector"]), expected, atol=1e-5)
    assert len(answer["vector"]) == faces.latent_dim


def test_the_vector_moves_the_decoded_image(faces) -> None:
    vector = get(faces, "/api/attribute-vector", "name=Black_Hair")[1]["vector"]
    still, moved = (handle(faces, "POST", "/api/decode", "", json.dumps({"z": [s * v for v in vector]}).encode())
                    for s in (0.0, 3.0))
    assert Image.open(io.BytesIO(still.body)).mode == "RGB" and Image.open(io.BytesIO(still.body)).size == (64, 64)
    assert still.body != moved.body


@pytest.mark.parametrize("query,status,needle", [
    ("name=Wearing_Hat", 404, "no attribute 'Wearing_Hat'"),
    ("name=smiling", 404, "'Smiling', 'Eyeglasses'"),  # names are exact; the error lists them
    ("name=", 404, "no attribute ''"),
    ("name=a%0Ab", 404, "no attribute 'a\\nb'"),  # still one line
    ("", 400, "name is required"),
])
def test_an_unknown_or_missing_name_is_a_one_line_error_listing_the_names(faces, query, status, needle) -> None:
    got, answer = get(faces, "/api/attribute-vector", query)
    assert got == status and needle in answer["error"] and "\n" not in answer["error"]
    if status == 404:
        assert all(name in answer["error"] for name in ATTRIBUTE_NAMES)


def test_an_attribute_with_no_test_image_on_one_side_has_no_vector(faces, monkeypatch) -> None:
    everyone = faces.test_attributes.clone()
    everyone[:, ATTRIBUTE_NAMES.index("Eyeglasses")] = True
    monkeypatch.setattr(faces, "test_attributes", everyone)
    status, answer = get(faces, "/api/attribute-vector", "name=Eyeglasses")
    assert status == 400 and "no image without 'Eyeglasses'" in answer["error"]
    assert get(faces, "/api/attribute-vector", "name=Smiling")[0] == 200


def test_a_gan_lists_no_attributes_and_says_it_has_no_encoder(runs) -> None:
    gan = Explorer(load_run(runs["faces-gan"]))
    assert get(gan, "/api/info")[1]["attributes"] == []
    status, answer = get(gan, "/api/attribute-vector", "name=Smiling")
    assert status == 400 and "no encoder" in answer["error"]


def test_a_run_without_attributes_lists_none(runs) -> None:
    shapes = Explorer(load_run(runs["shapes-vae"]))
    assert get(shapes, "/api/info")[1]["attributes"] == []
    status, answer = get(shapes, "/api/attribute-vector", "name=Smiling")
    assert status == 404 and "has none" in answer["error"]


def test_the_route_is_known_to_other_methods(faces) -> None:
    response = handle(faces, "POST", "/api/attribute-vector", "name=Smiling", b"")
    assert response.status == 405 and "not allowed" in json.loads(response.body)["error"]
