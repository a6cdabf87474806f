"""A real local HTTP server for a `DemoApi` (stdlib only): HTTP/1.1 keep-alive, one thread per connection."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, unquote, urlsplit

from sched_assets.demo.app import DemoApi


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler stalled by a "timeout" fault must not hold up close()
    allow_reuse_address = True
    request_queue_size = 256

    api: DemoApi
    timeout_stall: float
    closing: threading.Event
    connections: set[socket.socket]
    connections_lock: threading.Lock

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients dropping connections (timeouts, resets) is routine here, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    disable_nagle_algorithm = True  # headers and body are separate writes
    timeout = 120  # drop idle keep-alive connections eventually
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests and benchmarks would drown in access logs

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # keep the connection in sync for the next request
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        response = self.server.api.handle(self.command, unquote(parts.path), query, self.headers)
        if response.delay > 0 and self.server.closing.wait(response.delay):
            return
        if response.action == "reset":
            self._reset()
            return
        if response.action == "timeout" and self.server.closing.wait(self.server.timeout_stall):
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            self.close_connection = True  # the client gave up (e.g. its timeout fired during a stall)

    def _reset(self) -> None:
        """Drop the connection with a TCP RST and no response, like a crashing proxy."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Close the file wrappers first: the socket only really closes (sending RST) when they are gone.
        # The stand-in keeps the base class's final flush() from failing on a closed file.
        self.rfile.close()
        self.wfile.close()
        self.wfile = io.BytesIO()
        self.connection.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class DemoServer:
    """A running server; use as a context manager or call `close()`."""

    def __init__(
        self, api: DemoApi, host: str = "127.0.0.1", port: int = 0, timeout_stall: float = 30.0
    ) -> None:
        httpd = _Server((host, port), _Handler)
        httpd.api = api
        httpd.timeout_stall = timeout_stall
        httpd.closing = threading.Event()
        httpd.connections = set()
        httpd.connections_lock = threading.Lock()
        self._httpd = httpd
        self.api = api
        self.host = host
        self.port: int = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"demo-api:{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        """Scheme, host and port; admin endpoints live at `base_url + "/_demo/..."`."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The API root to give a client, e.g. `http://127.0.0.1:PORT/v2`."""
        return self.base_url + self.api.root

    def close(self) -> None:
        """Stop accepting, wake stalled handlers and drop open keep-alive connections."""
        httpd = self._httpd
        if httpd.closing.is_set():
            return
        httpd.closing.set()
        httpd.shutdown()
        httpd.server_close()
        with httpd.connections_lock:
            for conn in list(httpd.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def serve(api: DemoApi, port: int = 0, host: str = "127.0.0.1", timeout_stall: float = 30.0) -> DemoServer:
    """Serve `api` on `host:port` (0 picks a free port) from a daemon thread."""
    return DemoServer(api, host=host, port=port, timeout_stall=timeout_stall)
