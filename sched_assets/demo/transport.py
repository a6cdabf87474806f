"""In-process transport: an `httpx.MockTransport` that serves a `DemoApi` without opening a port."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from sched_assets.demo.app import DemoApi

# Any host works with the mock transport; `.invalid` makes an accidental real request fail fast.
DEMO_BASE_URL = "http://demo.invalid/v2"


def demo_transport(api: DemoApi, sleep: Callable[[float], None] = time.sleep) -> httpx.MockTransport:
    """Route httpx requests to `api`, turning its fault actions into the errors httpx would raise.

    "reset" alternates between ConnectError and RemoteProtocolError (both happen on a dropped
    keep-alive connection), "timeout" raises ReadTimeout at once instead of stalling, "truncate"
    delivers the cut body. Latency is slept with `sleep`.
    """
    resets = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal resets
        query = dict(request.url.params.multi_items())
        response = api.handle(request.method, request.url.path, query, request.headers)
        if response.delay > 0:
            sleep(response.delay)
        if response.action == "reset":
            resets += 1
            if resets % 2:
                raise httpx.ConnectError("[Errno 104] Connection reset by peer", request=request)
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if response.action == "timeout":
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        return httpx.Response(
            response.status, headers=response.headers, content=response.body, request=request
        )

    return httpx.MockTransport(handler)
