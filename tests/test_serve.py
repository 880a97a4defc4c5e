"""The explorer API: decodes, encodes and lists for a tiny run; every bad input is a 4xx with one line."""
from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request

import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.data.batches import to_unit_float
from genlab.latent import encode_means
from genlab.serve.api import MAX_UPLOAD, Explorer, handle
from genlab.serve.server import make_server
from genlab.train.run import load_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("serve")
    made = {}
    for name, extra in (("vae", ["--latent-dim", "3"]), ("dcgan", ["--dim", "8"]), ("classifier", [])):
        out = root / name
        assert main(["train", name, "--data", "shapes", "--epochs", "1", "--max-steps", "2", *extra,
                     "--out", str(out)]) == 0
        made[name] = out
    return made


@pytest.fixture(scope="module")
def vae(runs) -> Explorer:
    return Explorer(load_run(runs["vae"]))


def call(explorer: Explorer, method: str, path: str, query: str = "", body: bytes = b""):
    response = handle(explorer, method, path, query, body)
    return response.status, response


def huge_png() -> bytes:
    """A few kilobytes of PNG that would decode to 20 million pixels."""
    buffer = io.BytesIO()
    Image.new("1", (5000, 4000)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_of(response) -> Image.Image:
    assert response.content_type == "image/png"
    return Image.open(io.BytesIO(response.body))


def test_info_and_decode(vae) -> None:
    status, response = call(vae, "GET", "/api/info")
    info = json.loads(response.body)
    assert status == 200 and info["latent_dim"] == 3 and info["sliders"] == 3 and info["kind"] == "autoencoder"
    first = call(vae, "POST", "/api/decode", body=json.dumps({"z": [0, 0, 0]}).encode())[1]
    moved = call(vae, "POST", "/api/decode", body=json.dumps({"z": [2.5, -1, 0]}).encode())[1]
    assert png_of(first).size == (28, 28) and first.body != moved.body


def test_encode_an_upload_and_list_test_images(vae) -> None:
    status, response = call(vae, "GET", "/api/test-image", "index=3")
    assert status == 200
    z = json.loads(call(vae, "POST", "/api/encode", body=response.body)[1].body)["z"]
    code = json.loads(call(vae, "GET", "/api/test-code", "index=3")[1].body)["z"]
    assert torch.allclose(torch.tensor(z), torch.tensor(code), atol=1e-4)
    listing = json.loads(call(vae, "GET", "/api/test-images", "offset=2&count=5")[1].body)["images"]
    assert [item["index"] for item in listing] == [2, 3, 4, 5, 6]
    labels = vae.test_y.tolist()
    for label in range(len(vae.classes)):
        chosen = json.loads(call(vae, "GET", "/api/test-images", f"class={label}&count=6&offset=5")[1].body)["images"]
        expected = [i for i, y in enumerate(labels) if y == label and i >= 5][:6]
        assert [item["index"] for item in chosen] == expected and {item["label"] for item in chosen} <= {label}
    mean = json.loads(call(vae, "GET", "/api/class-mean", "class=1")[1].body)["z"]
    every = encode_means(vae.model, to_unit_float(vae.test_x[vae.test_y == 1]))
    assert torch.allclose(torch.tensor(mean), every.mean(0), atol=1e-5)  # all the class's test images
    points = json.loads(call(vae, "GET", "/api/scatter")[1].body)["points"]
    assert len(points) > 10 and all(len(p) == 3 for p in points)


@pytest.mark.parametrize("method,path,query,body,status,needle", [
    ("POST", "/api/decode", "", b"{not json", 400, "malformed JSON"),
    ("POST", "/api/decode", "", b"[1, 2, 3]", 400, "must be an object"),
    ("POST", "/api/decode", "", b'{"z": [1, 2]}', 400, "has 2 numbers but"),
    ("POST", "/api/decode", "", b'{"z": [1, "a", 2]}', 400, "only numbers"),
    ("POST", "/api/decode", "", b'{"z": [1, NaN, 2]}', 400, "non-finite"),
    ("POST", "/api/decode", "", b'{"z": [1, Infinity, 2]}', 400, "non-finite"),
    ("POST", "/api/decode", "", b'{"z": "0,0,0"}', 400, "must be a list"),
    ("POST", "/api/decode", "", b" " * 70_000, 413, "limit"),
    ("POST", "/api/decode", "", b'{"z": [' + b"9" * 5000 + b', 0, 0]}', 400, "malformed JSON"),  # int digit limit
    ("POST", "/api/decode", "", b'{"z": [1' + b"0" * 400 + b', 0, 0]}', 400, "beyond float range"),
    ("POST", "/api/decode", "", b"[" * 50_000, 400, "malformed JSON"),                            # nesting
    ("POST", "/api/encode", "", b"this is not an image", 415, "not a PNG or JPEG"),
    ("POST", "/api/encode", "", huge_png(), 413, "pixel limit"),
    ("POST", "/api/encode", "", b"x" * (MAX_UPLOAD + 1), 413, "limit"),
    ("GET", "/api/test-image", "index=999999", b"", 404, "does not exist"),
    ("GET", "/api/test-images", "count=0", b"", 400, "between"),
    ("GET", "/api/test-images", "offset=abc", b"", 400, "integer"),
    ("GET", "/api/test-images", "class=7", b"", 400, "does not exist"),
    ("GET", "/api/test-images", "class=", b"", 400, "integer"),
    ("GET", "/api/decode", "", b"", 405, "not allowed"),
    ("GET", "/api/nothing", "", b"", 404, "no API endpoint"),
    ("POST", "/api/decode-grid", "", b'{"codes": []}', 400, "1 to"),
    ("GET", "/api/class-mean", "class=99", b"", 400, "does not exist"),
    ("GET", "/api/test-code", "index=-1", b"", 404, "does not exist"),
])
def test_every_bad_input_is_a_4xx_with_one_line(vae, method, path, query, body, status, needle) -> None:
    got, response = call(vae, method, path, query, body)
    error = json.loads(response.body)["error"]
    assert got == status and needle in error and "\n" not in error


def test_a_server_fault_is_still_a_one_line_json_answer(vae, monkeypatch, capsys) -> None:
    def broken(z):
        raise RuntimeError("out of memory\nwith details")

    monkeypatch.setattr(vae, "decode", broken)
    status, response = call(vae, "POST", "/api/decode", body=b'{"z": [0, 0, 0]}')
    error = json.loads(response.body)["error"]
    assert status == 500 and "RuntimeError" in error and "\n" not in error
    assert "out of memory" in capsys.readouterr().err  # the details go to the terminal


def test_a_gan_decodes_but_has_no_encoder(runs) -> None:
    gan = Explorer(load_run(runs["dcgan"]))
    assert json.loads(call(gan, "GET", "/api/info")[1].body)["sliders"] == 16
    z = json.dumps({"z": [0.1] * 100}).encode()
    assert call(gan, "POST", "/api/decode", body=z)[0] == 200
    status, response = call(gan, "GET", "/api/scatter")
    assert status == 400 and "no encoder" in json.loads(response.body)["error"]


def test_serve_refuses_a_classifier_run_in_one_line(runs, capsys) -> None:
    assert main(["serve", str(runs["classifier"])]) == 2
    err = capsys.readouterr().err
    assert "no latent space" in err and len(err.strip().splitlines()) == 1
    assert main(["serve", str(runs["classifier"]), "--port", "70000"]) == 2
    assert "--port must be 0..65535" in capsys.readouterr().err


def test_the_server_answers_over_http(vae) -> None:
    server = make_server(vae, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        page = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        assert "genlab explorer" in page and "/api/decode" in page
        request = urllib.request.Request(base + "/api/decode", data=b'{"z": [0, 0, 0]}', method="POST")
        assert urllib.request.urlopen(request, timeout=10).headers["Content-Type"] == "image/png"
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(urllib.request.Request(base + "/api/decode", data=b"{", method="POST"), timeout=10)
        assert error.value.code == 400
    finally:
        server.shutdown()
        server.server_close()


def test_the_report_names_the_explorer_command_for_latent_models_only(runs) -> None:
    from genlab.report import write_report

    assert f"genlab serve {runs['vae']}" in write_report(runs["vae"]).read_text()
    assert "genlab serve" not in write_report(runs["classifier"]).read_text()


def test_ctrl_c_stops_the_explorer_cleanly(runs, monkeypatch, capsys) -> None:
    import genlab.cli.serve

    class Stopped:
        server_address = ("127.0.0.1", 8765)
        closed = False

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            Stopped.closed = True

    monkeypatch.setattr(genlab.cli.serve, "make_server", lambda *args: Stopped())
    assert main(["serve", str(runs["vae"])]) == 0  # Ctrl-C is how it is meant to stop
    assert Stopped.closed and "stopped" in capsys.readouterr().out
