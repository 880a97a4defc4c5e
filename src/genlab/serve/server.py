"""HTTP for the explorer on the standard library's http.server: no web framework to install.

The API is a dozen small JSON/PNG calls answered in milliseconds for one local user. Connections are
accepted by one loop that parks them without a thread until their first bytes arrive, then hands them
to a bounded pool of workers; idle and slow connections are closed after a timeout, so a burst from a
browser is queued and a pile of idle sockets holds no threads.
"""
from __future__ import annotations

import ipaddress
import selectors
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import resources
from urllib.parse import urlsplit

from genlab.serve.api import MAX_UPLOAD, Explorer, Response, handle, json_response

# every static file the page needs, by URL path: (file in static/, content type); nothing else is served
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/explorer.js": ("explorer.js", "text/javascript; charset=utf-8"),
          "/explorer.css": ("explorer.css", "text/css; charset=utf-8")}
# the page may run only its own script and style, and talk only to this server (blob: holds decoded PNGs)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "Cross-Origin-Resource-Policy": "same-origin",
                    "Cache-Control": "no-store"}
LISTEN_QUEUE = 128   # connections the kernel holds before they are accepted (a browser opens dozens at once)
WORKERS = 16         # requests handled at once; the others wait in the pool's queue, holding no thread
MAX_PARKED = 1024    # connections waiting for their first byte; beyond this the oldest is closed
IDLE_S = 30.0        # seconds a connection may stay silent before its first byte
REQUEST_S = 10.0     # seconds for a whole request (line, headers, body) to arrive once it has begun


def static_file(name: str) -> bytes:
    return resources.files("genlab.serve").joinpath("static", name).read_bytes()


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(header: str | None, served_host: str, port: int) -> bool:
    """Whether a request's Host header names this server: an IP literal, localhost or --host, with its port.

    A DNS-rebinding page reaches the server under its own host name, which this refuses.
    """
    if not header:
        return False
    name, _, given_port = header.rpartition(":") if not header.endswith("]") else (header, "", "")
    if not name or given_port != str(port):
        return False
    try:
        ipaddress.ip_address(name[1:-1] if name.startswith("[") and name.endswith("]") else name)
        return True
    except ValueError:
        return name.lower() in ("localhost", served_host.lower())


class DeadlineReader:
    """The request stream, read straight from the socket with one deadline for the whole request.

    Each recv waits only for the time left, so a client trickling a byte at a time cannot hold a worker
    past the deadline (a buffered file's readline would wait afresh for every byte).
    """

    def __init__(self, connection: socket.socket, seconds: float) -> None:
        self.connection, self.deadline, self.buffer = connection, time.monotonic() + seconds, b""

    def fill(self) -> bool:
        """Receive more bytes into the buffer; False at the end of the stream."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long to arrive")
        self.connection.settimeout(left)
        chunk = self.connection.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def take(self, size: int) -> bytes:
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    def readline(self, limit: int = -1) -> bytes:
        limit = limit if limit >= 0 else 1 << 62
        while b"\n" not in self.buffer[:limit] and len(self.buffer) < limit and self.fill():
            pass
        end = self.buffer.find(b"\n", 0, limit)
        return self.take(end + 1 if end >= 0 else limit)

    def read(self, size: int = -1) -> bytes:
        size = size if size >= 0 else 1 << 62
        while len(self.buffer) < size and self.fill():
            pass
        return self.take(size)

    def close(self) -> None:
        self.buffer = b""


class Handler(BaseHTTPRequestHandler):
    """One request on one connection (HTTP/1.0: the connection closes after the answer)."""

    server: ExplorerServer
    def version_string(self) -> str:  # the Server header: no Python version to advertise
        return "genlab-explorer"

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self.rfile = DeadlineReader(self.connection, self.server.request_s)

    def do_GET(self) -> None:
        if not self.host_checked():
            return
        url = urlsplit(self.path)
        if url.path in STATIC:
            name, content_type = STATIC[url.path]
            self.send(Response(200, content_type, static_file(name)))
        else:
            self.send(handle(self.server.explorer, "GET", url.path, url.query, b""))

    def do_POST(self) -> None:
        if not self.host_checked():
            return
        url = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_UPLOAD:
            self.send(json_response({"error": f"Content-Length must be 0..{MAX_UPLOAD} bytes"}, 413))
            return
        body = self.rfile.read(length)
        if len(body) < length:
            self.send(json_response({"error": f"the body ended after {len(body)} of {length} bytes"}, 400))
            return
        self.send(handle(self.server.explorer, "POST", url.path, url.query, body))

    def other_method(self) -> None:
        """HEAD, PUT, DELETE, ...: the API's own JSON 405 or 404."""
        if self.host_checked():
            url = urlsplit(self.path)
            if url.path in STATIC:
                self.send(json_response({"error": f"{self.command} is not allowed on {url.path}; use GET"}, 405))
            else:
                self.send(handle(self.server.explorer, self.command, url.path, url.query, b""))

    do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = other_method

    def host_checked(self) -> bool:
        """Answer 421 and return False when the Host header does not name this server."""
        host, port = self.server.served_host, self.server.server_address[1]
        if host_allowed(self.headers.get("Host"), host, port):
            return True
        self.send(json_response({"error": f"Host {self.headers.get('Host')!r} is not this server; "
                                          f"open http://{host}:{port}/ instead"}, 421))
        return False

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, header too long, unknown method) as the API's JSON."""
        self.close_connection = True
        reason = message or self.responses.get(code, ("error",))[0]
        self.send(json_response({"error": " ".join(f"{reason} ({code})".split())}, code))

    def send(self, response: Response) -> None:
        self.connection.settimeout(self.server.request_s)  # the answer gets its own time to leave
        self.request_version = "HTTP/1.0"  # never HTTP/0.9's bare body: every answer has its status and headers
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args) -> None:  # quiet: the terminal shows the address only
        pass


class ExplorerServer(HTTPServer):
    """Parks connections in one selector loop until their first byte, then hands them to WORKERS threads."""

    request_queue_size = LISTEN_QUEUE

    def __init__(self, explorer: Explorer, host: str, port: int) -> None:
        super().__init__((host, port), Handler)
        self.explorer, self.served_host = explorer, host
        self.idle_s, self.request_s = IDLE_S, REQUEST_S
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="genlab-serve")
        self.parked: dict[socket.socket, tuple[float, object]] = {}  # connection -> (accepted at, address)
        self.stopping, self.stopped = threading.Event(), threading.Event()
        self.stopped.set()  # not serving yet: shutdown() returns at once
        self.socket.setblocking(False)

    def serve_forever(self, poll_interval: float = 0.2) -> None:
        self.stopped.clear()
        with selectors.DefaultSelector() as selector:
            try:
                selector.register(self.socket, selectors.EVENT_READ)
                while not self.stopping.is_set():
                    for key, _ in selector.select(poll_interval):
                        if key.fileobj is self.socket:
                            self.accept_all(selector)
                        else:
                            self.dispatch(selector, key.fileobj)
                    self.close_idle(selector)
            finally:  # Ctrl-C lands here too
                for connection in list(self.parked):
                    self.unpark(selector, connection).close()
                self.stopped.set()

    def accept_all(self, selector: selectors.BaseSelector) -> None:
        """Accept every waiting connection and park it until it sends something."""
        while True:
            try:
                connection, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. out of file descriptors: the connection stays in the queue for later
                return
            if len(self.parked) >= MAX_PARKED:
                self.unpark(selector, next(iter(self.parked))).close()
            connection.setblocking(True)
            self.parked[connection] = (time.monotonic(), address)
            selector.register(connection, selectors.EVENT_READ)

    def unpark(self, selector: selectors.BaseSelector, connection: socket.socket) -> socket.socket:
        selector.unregister(connection)
        self.parked.pop(connection)
        return connection

    def dispatch(self, selector: selectors.BaseSelector, connection: socket.socket) -> None:
        address = self.parked[connection][1]
        self.unpark(selector, connection)
        self.pool.submit(self.work, connection, address)

    def close_idle(self, selector: selectors.BaseSelector) -> None:
        """Close connections that have sent nothing for idle_s seconds (dicts keep accept order)."""
        now = time.monotonic()
        for connection, (accepted, _) in list(self.parked.items()):
            if now - accepted < self.idle_s:
                return
            self.unpark(selector, connection).close()

    def work(self, connection: socket.socket, address) -> None:
        try:
            self.finish_request(connection, address)
        except OSError:  # the client went away or was too slow (TimeoutError): nobody to answer
            pass
        except Exception as e:  # a fault outside api.handle: the terminal gets one line, the server stays up
            print(f"genlab serve: a connection from {address[0]} failed: {type(e).__name__}: {e}", file=sys.stderr)
        finally:
            self.shutdown_request(connection)

    def shutdown(self) -> None:
        """Stop serve_forever (from another thread) and wait for it and the running requests."""
        self.stopping.set()
        self.stopped.wait()
        self.pool.shutdown(wait=True)


    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 8765) -> ExplorerServer:
    """A server bound to host:port (port 0 picks a free one); call serve_forever() to run it."""
    return ExplorerServer(explorer, host, port)
