"""The explorer under hostile load: stalled requests hold no worker, and piles of idle connections or a process out
of file descriptors neither spin the CPU nor keep /api/info from being answered.

The descriptor tests run the server in a child process whose descriptor limit is lowered (resource.setrlimit), so
the test process keeps its own descriptors for the clients.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from genlab.cli import main
from genlab.runs.store import load_run
from genlab.serve.api import Explorer
from genlab.serve.server import WORKERS, make_server

LIMIT = 256  # the child server's descriptor limit (a common default is 1024; lower keeps the test small)
SERVER = """
import os, resource, sys, threading
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from genlab.runs.store import load_run
from genlab.serve.api import Explorer
from genlab.serve.server import make_server
server = make_server(Explorer(load_run(sys.argv[1])), port=0)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
held = []
for line in sys.stdin:
    if line.strip() == "hog":  # take every descriptor left, as a leak elsewhere in the process would
        try:
            while True:
                held.append(open(os.devnull))
        except OSError:
            pass
        print(len(held), flush=True)
    elif line.strip() == "release":
        for f in held:
            f.close()
        held.clear()
        print("released", flush=True)
"""


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serve-limits") / "vae"
    assert main(["train", "vae", "--data", "shapes", "--epochs", "1", "--max-steps", "2", "--latent-dim", "3",
                 "--hidden", "16", "--out", str(out)]) == 0
    return out


def info_request(port: int) -> bytes:
    return f"GET /api/info HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def timed_info(port: int, timeout: float) -> tuple[float, int | str]:
    """(seconds, status) of one /api/info, or (seconds, what went wrong)."""
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(info_request(port))
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
    except OSError as err:
        return time.monotonic() - start, f"{type(err).__name__}: {err}"
    return time.monotonic() - start, int(answer.split()[1]) if answer else "closed without an answer"


def test_stalled_requests_hold_no_worker(vae_run) -> None:
    server = make_server(Explorer(load_run(vae_run)), port=0)  # the default 10 s request deadline
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port, stalled = server.server_address[1], []
    try:
        for i in range(2 * WORKERS):  # half stall in their headers, half in their body
            connection = socket.create_connection(("127.0.0.1", port), timeout=10)
            connection.sendall(b"GET /api/info HTTP/1.0\r\nHost: x" if i % 2 else
                               b"POST /api/decode HTTP/1.0\r\nContent-Length: 100\r\n\r\n{\"z\": [")
            stalled.append(connection)
        time.sleep(0.5)  # every stalled request has begun
        seconds, status = timed_info(port, timeout=30)
        assert status == 200 and seconds < 3, f"/api/info: {status} after {seconds:.2f} s beside stalled requests"
    finally:
        for connection in stalled:
            connection.close()
        server.shutdown()
        server.server_close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks of 1/100 s


@pytest.fixture
def limited_server(vae_run):
    """The explorer in a child process with at most LIMIT descriptors: yields (process, port)."""
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(vae_run), str(LIMIT)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())
        assert timed_info(port, timeout=30)[1] == 200  # serving: its selector and threads exist
        time.sleep(0.5)  # and the worker that answered has closed that connection: every descriptor is idle
        yield process, port
    finally:
        process.kill()
        process.wait()


def command(process: subprocess.Popen, line: str) -> str:
    process.stdin.write(line + "\n")
    process.stdin.flush()
    return process.stdout.readline().strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads CPU time from /proc")
def test_more_idle_connections_than_descriptors_neither_spin_nor_block_info(limited_server) -> None:
    process, port = limited_server
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(LIMIT + 60)]
    try:
        time.sleep(1.0)  # the server has taken what it can
        before = cpu_seconds(process.pid)
        time.sleep(2.0)
        spent = cpu_seconds(process.pid) - before
        seconds, status = timed_info(port, timeout=15)
        assert status == 200 and seconds < 5, f"/api/info: {status} after {seconds:.2f} s beside {len(idle)} idle"
        assert spent < 0.4, f"the idle server used {spent:.2f} s of CPU in 2 s"
    finally:
        for connection in idle:
            connection.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads CPU time from /proc")
def test_a_server_out_of_descriptors_backs_off_and_recovers(limited_server) -> None:
    process, port = limited_server
    assert int(command(process, "hog")) > 0
    waiting = socket.create_connection(("127.0.0.1", port), timeout=10)  # queued by the kernel, not accepted
    try:
        waiting.sendall(info_request(port))
        time.sleep(0.5)
        before = cpu_seconds(process.pid)
        time.sleep(2.0)
        spent = cpu_seconds(process.pid) - before
        assert command(process, "release") == "released"
        waiting.settimeout(10)
        answer = b""
        while chunk := waiting.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.0 200"), answer[:200]
        assert spent < 0.4, f"the server used {spent:.2f} s of CPU in 2 s while accept failed"
    finally:
        waiting.close()
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["latent_dim"] == 3
