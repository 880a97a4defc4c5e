"""The explorer API: decodes, encodes and lists for a tiny run; every bad input is a 4xx with one line."""
from __future__ import annotations

import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.data.batches import to_unit_float
from genlab.latent import encode_means
from genlab.runs.store import load_run
from genlab.serve.api import MAX_UPLOAD, Explorer, handle
from genlab.serve.server import CSP, WORKERS, make_server


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
    ("GET", "/api/a\nb", "", b"", 404, "no API endpoint"),  # the path is quoted: still one line
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


def test_a_second_serve_on_a_port_in_use_says_so_in_one_line(runs, capsys) -> None:
    from cli_helpers import fails

    with socket.socket() as taken:  # listening, as a first `genlab serve` would be
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = fails(["serve", str(runs["vae"]), "--port", str(port)], capsys, f"127.0.0.1:{port}", "--port")
    assert "in use" in err and "AttributeError" not in err


def test_the_server_answers_over_http(vae) -> None:
    server = make_server(vae, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        page = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        script = urllib.request.urlopen(base + "/explorer.js", timeout=10).read().decode()
        assert "genlab explorer" in page and '<script src="/explorer.js">' in page and "/api/decode" in script
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
    import genlab.serve.server

    class Stopped:
        server_address = ("127.0.0.1", 8765)
        closed = False

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            Stopped.closed = True

    monkeypatch.setattr(genlab.serve.server, "make_server", lambda *args: Stopped())
    assert main(["serve", str(runs["vae"])]) == 0  # Ctrl-C is how it is meant to stop
    assert Stopped.closed and "stopped" in capsys.readouterr().out


# ---------------------------------------------------------------- hostile clients, over real sockets on 127.0.0.1


@pytest.fixture
def served(vae):
    """A running explorer on a free loopback port: yields the server; shut down afterwards."""
    server = make_server(vae, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def raw(server, request: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send request bytes as they are; (status, headers with lower-case names, body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=timeout) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def request(server, method: str, path: str, body: bytes = b"", host: str | None = "") -> bytes:
    """A well-formed HTTP/1.0 request; host '' means this server's own 127.0.0.1:port, None sends no Host."""
    host = f"127.0.0.1:{server.server_address[1]}" if host == "" else host
    lines = [f"{method} {path} HTTP/1.0", f"Content-Length: {len(body)}"] + ([f"Host: {host}"] if host else [])
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.mark.parametrize("method, path, body, status", [
    ("GET", "/", b"", 200), ("GET", "/explorer.js", b"", 200), ("GET", "/explorer.css", b"", 200),
    ("GET", "/api/info", b"", 200), ("GET", "/api/nothing", b"", 404), ("GET", "/../../etc/passwd", b"", 404),
    ("POST", "/api/decode", b"{", 400), ("POST", "/api/decode", b'{"z": [0, 0, 0]}', 200),
    ("HEAD", "/api/info", b"", 405), ("OPTIONS", "/", b"", 405), ("DELETE", "/api/decode", b"", 405),
    ("PUT", "/api/nothing", b"", 404), ("FOO", "/", b"", 501),
])
def test_every_method_and_error_answers_json_with_csp_and_nosniff(served, method, path, body, status) -> None:
    got, headers, answer = raw(served, request(served, method, path, body))
    assert got == status
    assert headers["content-security-policy"] == CSP and "script-src 'self'" in CSP and "unsafe" not in CSP
    assert headers["x-content-type-options"] == "nosniff"
    if status >= 400:
        assert headers["content-type"] == "application/json"
        if method != "HEAD":  # a HEAD answer has headers only
            error = json.loads(answer)["error"]
            assert error and "\n" not in error


@pytest.mark.parametrize("junk", [b"\x00\x01garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                                  b"GET /" + b"a" * 70_000 + b" HTTP/1.0\r\n\r\n",
                                  b"GET / HTTP/1.0\r\nX: " + b"b" * 70_000 + b"\r\n\r\n"])
def test_a_malformed_request_gets_a_json_4xx_and_the_server_stays_up(served, junk) -> None:
    status, headers, body = raw(served, junk)
    assert (400 <= status < 500 or status == 505) and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]
    assert headers["content-security-policy"] == CSP
    assert raw(served, request(served, "GET", "/api/info"))[0] == 200


@pytest.mark.parametrize("host, status", [
    ("localhost:{port}", 200), ("127.0.0.1:{port}", 200), ("[::1]:{port}", 200),
    ("evil.example:{port}", 421), ("attacker.example", 421), ("127.0.0.1:1", 421), ("localhost", 421), (None, 421),
])
def test_a_request_for_another_host_is_refused(served, host, status) -> None:
    host = host and host.format(port=served.server_address[1])
    got, _, body = raw(served, request(served, "GET", "/api/info", host=host))
    assert got == status
    if status == 421:
        assert "is not this server" in json.loads(body)["error"]
    assert raw(served, request(served, "GET", "/", host=host))[0] == status  # the page too


def upload(format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 12), (40, 90, 200)).save(buffer, format=format, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("format", ["TIFF", "BMP", "GIF", "ICO", "WEBP", "EPS"])
def test_uploads_other_than_png_or_jpeg_are_refused_by_content(vae, format) -> None:
    body = upload(format) if format != "EPS" else b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    status, response = call(vae, "POST", "/api/encode", body=body)
    assert status == 415 and "not a PNG or JPEG" in json.loads(response.body)["error"]


@pytest.mark.parametrize("format", ["PNG", "JPEG"])
def test_png_and_jpeg_uploads_are_encoded(vae, format) -> None:
    status, response = call(vae, "POST", "/api/encode", body=upload(format))
    assert status == 200 and len(json.loads(response.body)["z"]) == 3


def test_binding_beyond_loopback_warns_that_there_is_no_authentication(runs, monkeypatch, capsys) -> None:
    import genlab.serve.api
    import genlab.serve.server

    class Stopped:
        def __init__(self, host: str) -> None:
            self.server_address = (host, 8765)

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            pass

    for host, warned in (("0.0.0.0", True), ("127.0.0.1", False)):
        monkeypatch.setattr(genlab.serve.api, "Explorer", lambda run, data_dir: None)  # the data need not load
        monkeypatch.setattr(genlab.serve.server, "make_server", lambda explorer, h, port: Stopped(h))
        assert main(["serve", str(runs["vae"]), "--host", host]) == 0
        err = capsys.readouterr().err
        assert ("no authentication" in err) == warned and len(err.strip().splitlines()) == int(warned), err


def test_idle_and_slow_connections_are_closed_after_their_timeouts(served) -> None:
    served.idle_s, served.request_s = 0.5, 0.5
    port, start = served.server_address[1], time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as idle, \
            socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(b"GET /api/info HTTP/1.0\r\n")
        with pytest.raises(OSError):  # closed by the server, so a later send fails (reset or broken pipe)
            for _ in range(30):  # one header byte every 0.1 s: never a whole request
                slow.sendall(b"X")
                time.sleep(0.1)
        slow_closed = time.monotonic() - start
        assert idle.recv(100) == b""  # closed without an answer
        idle_closed = time.monotonic() - start
    assert slow_closed < 2 and idle_closed < 2, f"closed after {slow_closed:.1f} s (slow), {idle_closed:.1f} s (idle)"


def test_200_concurrent_decodes_are_all_answered_with_the_right_png(served, vae) -> None:
    codes = [[i / 100, -i / 150, (i % 7) / 3] for i in range(200)]
    expected = [vae.decode(z) for z in codes]
    answers: list[bytes | str] = [b""] * 200
    barrier = threading.Barrier(200, timeout=60)

    def client(i: int) -> None:
        try:
            barrier.wait()
            answers[i] = raw(served, request(served, "POST", "/api/decode", json.dumps({"z": codes[i]}).encode()),
                             timeout=60)[2]
        except OSError as e:  # reset or refused: recorded, then asserted below
            answers[i] = f"{type(e).__name__}: {e}"

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    failed = [answer for answer in answers if isinstance(answer, str)]
    assert not failed, f"{len(failed)} of 200 failed, e.g. {failed[0]}"
    assert answers == expected


def test_300_idle_connections_hold_no_threads_and_do_not_slow_info(served) -> None:
    port = served.server_address[1]
    info = request(served, "GET", "/api/info")
    threads_before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(300)]
    try:
        time.sleep(0.5)  # let the server accept them all
        timings = []
        for _ in range(20):
            start = time.perf_counter()
            assert raw(served, info)[0] == 200
            timings.append(time.perf_counter() - start)
        extra_threads = threading.active_count() - threads_before
        assert extra_threads <= WORKERS, f"{extra_threads} threads for 300 idle connections"
        assert sorted(timings)[10] < 0.05, f"/api/info took {sorted(timings)[10] * 1000:.1f} ms (median)"
    finally:
        for connection in idle:
            connection.close()
