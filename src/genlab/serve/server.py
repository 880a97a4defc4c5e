"""HTTP for the explorer on the standard library's ThreadingHTTPServer: no web framework to install.

The API is a dozen small JSON/PNG calls answered in milliseconds by a single local user, which the
standard library serves well; a framework would add dependencies without changing what the page does.
"""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

from genlab.serve.api import MAX_UPLOAD, Explorer, Response, handle, json_response

PAGE = "index.html"


def page() -> bytes:
    return resources.files("genlab.serve").joinpath("static", PAGE).read_bytes()


def make_handler(explorer: Explorer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "genlab-explorer"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path in ("/", "/index.html"):
                self.send(Response(200, "text/html; charset=utf-8", page()))
            else:
                self.send(handle(explorer, "GET", url.path, url.query, b""))

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_UPLOAD:
                self.send(json_response({"error": f"Content-Length must be 0..{MAX_UPLOAD} bytes"}, 413))
                return
            self.send(handle(explorer, "POST", url.path, url.query, self.rfile.read(length)))

        def send(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(response.body)

        def log_message(self, format: str, *args) -> None:  # quiet: the terminal shows the address only
            pass

    return Handler


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """A server bound to host:port (port 0 picks a free one); call serve_forever() to run it."""
    return ThreadingHTTPServer((host, port), make_handler(explorer))
