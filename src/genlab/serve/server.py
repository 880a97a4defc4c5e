"""HTTP for the explorer on the standard library's http.server: no web framework to install.

The API is a dozen small JSON/PNG calls answered in milliseconds for one local user. Connections are
accepted by one loop that parks them without a thread and reads their requests there, then hands each
whole request to a bounded pool of workers; idle and slow connections are closed after a timeout, so a
burst from a browser is queued, a pile of idle sockets holds no threads, and stalled requests hold no
worker. The connections stay below the process's descriptor limit (the oldest parked one makes room), and
when accepting fails anyway the loop stops listening for a moment instead of spinning.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import re
import selectors
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import resources
from typing import Any
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
MAX_PARKED = 1024    # connections parked in the loop; beyond this (or the descriptor limit) the oldest is closed
IDLE_S = 30.0        # seconds a connection may stay silent before its first byte
REQUEST_S = 10.0     # seconds for a whole request (line, headers, body) to arrive once it has begun
FD_RESERVE = 64      # descriptors no connection may take: the selector, the files and pipes the process opens
ACCEPT_PAUSE_S = 0.2  # how long the loop stops listening when accept fails (out of descriptors or memory)
MAX_HEAD = 65536 + 100 * 8192  # a request line and headers past this go to http.server to be refused
BUFFERED_MAX = 64 * 1024 * 1024  # request bytes the loop holds at once; past this a request finishes in a worker
HEAD_END = re.compile(rb"\n\r?\n")  # the blank line after the headers (http.server accepts bare \n too)
CONTENT_LENGTH = re.compile(rb"\ncontent-length:[ \t]*([0-9]{1,9})[ \t]*\r?\n", re.IGNORECASE)


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
    """The request stream: the bytes the loop already read, then the socket, with one deadline for the whole
    request.

    Each recv waits only for the time left, so a client trickling a byte at a time cannot hold a worker
    past the deadline (a buffered file's readline would wait afresh for every byte).
    """

    def __init__(self, connection: socket.socket, seconds: float, arrived: bytes = b"") -> None:
        self.connection, self.deadline, self.buffer = connection, time.monotonic() + seconds, arrived

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
        arrived, seconds_left = self.server.arrived.pop(self.connection, (b"", self.server.request_s))
        self.rfile = DeadlineReader(self.connection, seconds_left, arrived)

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


@dataclass
class Parked:
    """A connection the loop holds: when it was accepted (then, from its first byte, when its request began),
    and the bytes of its request so far."""

    address: Any
    since: float
    data: bytearray = field(default_factory=bytearray)
    size: int | None = None  # bytes of the whole request, once its headers have arrived

    def complete(self) -> bool:
        """Whether the request can go to a worker: all of it arrived, or http.server must refuse it anyway."""
        if self.size is None:
            end = HEAD_END.search(self.data)
            if end is None:
                first, line_ended, _ = self.data.partition(b"\n")
                # HTTP/0.9 and junk have no headers to wait for: http.server answers them from the first line
                return len(self.data) > MAX_HEAD or (bool(line_ended) and len(first.split()) < 3)
            length = CONTENT_LENGTH.search(self.data, 0, end.end())
            body = int(length.group(1)) if length else 0
            self.size = end.end() + (body if body <= MAX_UPLOAD else 0)  # a larger body is refused unread
        return len(self.data) >= self.size


def descriptor_limit() -> int | None:
    """This process's soft limit on open files, or None where there is none to read."""
    try:
        import resource
    except ImportError:  # Windows: no per-process descriptor limit of this kind
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def open_descriptors() -> int:
    """Descriptors this process holds now (an estimate where /proc and /dev/fd are missing)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 32


def connection_limit() -> int:
    """Connections held at once (parked or being answered): MAX_PARKED, or fewer so that they stay below the
    descriptor limit with FD_RESERVE to spare; accepting then never fails for want of a descriptor."""
    limit = descriptor_limit()
    if limit is None:
        return MAX_PARKED
    return max(1, min(MAX_PARKED, limit - open_descriptors() - FD_RESERVE))


class ExplorerServer(HTTPServer):
    """Parks connections in one selector loop while their requests arrive, then hands each whole request to
    WORKERS threads."""

    request_queue_size = LISTEN_QUEUE

    def __init__(self, explorer: Explorer, host: str, port: int) -> None:
        # before binding: a failed bind calls server_close(), which shuts the pool (its threads start on first use)
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="genlab-serve")
        super().__init__((host, port), Handler)
        self.explorer, self.served_host = explorer, host
        self.idle_s, self.request_s = IDLE_S, REQUEST_S
        self.parked: dict[socket.socket, Parked] = {}  # in accept order: the first is the oldest
        self.arrived: dict[socket.socket, tuple[bytes, float]] = {}  # handed over: (bytes read, seconds left)
        self.max_connections = connection_limit()
        self.answering, self.answering_lock = 0, threading.Lock()  # connections handed to the pool
        self.buffered = 0  # request bytes the parked connections hold
        self.listening_again = 0.0  # monotonic time the loop listens again after accept failed
        self.next_sweep = 0.0  # monotonic time of the next close_idle
        self.stopping, self.stopped = threading.Event(), threading.Event()
        self.stopped.set()  # not serving yet: shutdown() returns at once
        self.socket.setblocking(False)

    def serve_forever(self, poll_interval: float = 0.2) -> None:
        self.stopped.clear()
        self.listening_again = 0.0  # the selector below starts out listening
        with selectors.DefaultSelector() as selector:
            try:
                selector.register(self.socket, selectors.EVENT_READ)
                while not self.stopping.is_set():
                    self.listen_again(selector)
                    for key, _ in selector.select(poll_interval):
                        if key.fileobj is self.socket:
                            self.accept_all(selector)
                        elif key.fileobj in self.parked:
                            self.receive(selector, key.fileobj)
                    if time.monotonic() >= self.next_sweep:  # a scan of every parked connection, 20 times a second
                        self.next_sweep = time.monotonic() + 0.05
                        self.close_idle(selector)
            finally:  # Ctrl-C lands here too
                for connection in list(self.parked):
                    self.unpark(selector, connection).close()
                self.stopped.set()

    def accept_all(self, selector: selectors.BaseSelector) -> None:
        """Accept every waiting connection and park it; the oldest parked one makes room at the limit."""
        while True:
            full = len(self.parked) + self.answering >= self.max_connections
            if full and not self.parked:
                return self.pause(selector)  # every connection is being answered: the kernel queues the rest
            try:
                connection, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                if err.errno in (errno.ECONNABORTED, errno.EPERM):  # that connection is gone; the next may do
                    continue
                out_of_room = err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
                if out_of_room and self.make_room(selector):  # a descriptor freed is one more to accept with
                    continue
                return self.pause(selector)
            if full:  # the oldest parked connection gives its place to this one (FD_RESERVE covers the swap)
                self.make_room(selector)
            connection.setblocking(False)
            self.parked[connection] = Parked(address, time.monotonic())
            selector.register(connection, selectors.EVENT_READ)

    def make_room(self, selector: selectors.BaseSelector) -> bool:
        """Close the oldest parked connection; False when none is parked."""
        if not self.parked:
            return False
        self.unpark(selector, next(iter(self.parked))).close()
        return True

    def pause(self, selector: selectors.BaseSelector) -> None:
        """Stop listening for ACCEPT_PAUSE_S: the waiting connection keeps the socket readable, so listening
        on would spin the loop."""
        selector.unregister(self.socket)
        self.listening_again = time.monotonic() + ACCEPT_PAUSE_S

    def listen_again(self, selector: selectors.BaseSelector) -> None:
        if self.listening_again and time.monotonic() >= self.listening_again:
            self.listening_again = 0.0
            selector.register(self.socket, selectors.EVENT_READ)

    def unpark(self, selector: selectors.BaseSelector, connection: socket.socket) -> socket.socket:
        selector.unregister(connection)
        self.buffered -= len(self.parked.pop(connection).data)
        return connection

    def receive(self, selector: selectors.BaseSelector, connection: socket.socket) -> None:
        """Read what arrived on a parked connection; hand the request to a worker once it is whole."""
        parked = self.parked[connection]
        try:
            chunk = connection.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset by the client: nobody to answer
            self.unpark(selector, connection).close()
            return
        if not parked.data:
            parked.since = time.monotonic()  # the request's deadline runs from its first byte
        parked.data += chunk
        self.buffered += len(chunk)
        if not chunk and not parked.data:  # closed before a word: nothing to answer
            self.unpark(selector, connection).close()
        elif not chunk or parked.complete() or self.buffered > BUFFERED_MAX:
            self.dispatch(selector, connection)

    def dispatch(self, selector: selectors.BaseSelector, connection: socket.socket) -> None:
        parked = self.parked[connection]
        self.unpark(selector, connection)
        self.arrived[connection] = (bytes(parked.data), max(0.0, parked.since + self.request_s - time.monotonic()))
        connection.settimeout(self.request_s)
        with self.answering_lock:
            self.answering += 1
        self.pool.submit(self.work, connection, parked.address)

    def close_idle(self, selector: selectors.BaseSelector) -> None:
        """Close connections silent for idle_s seconds, and requests that took over request_s to arrive."""
        now = time.monotonic()
        for connection, parked in list(self.parked.items()):
            if now - parked.since >= (self.request_s if parked.data else self.idle_s):
                self.unpark(selector, connection).close()

    def work(self, connection: socket.socket, address) -> None:
        try:
            self.finish_request(connection, address)
        except OSError:  # the client went away or was too slow (TimeoutError): nobody to answer
            pass
        except Exception as e:  # a fault outside api.handle: the terminal gets one line, the server stays up
            print(f"genlab serve: a connection from {address[0]} failed: {type(e).__name__}: {e}", file=sys.stderr)
        finally:
            self.arrived.pop(connection, None)
            self.shutdown_request(connection)
            with self.answering_lock:
                self.answering -= 1

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
