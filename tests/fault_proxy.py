"""A fault-injecting HTTP proxy in front of a real node, for failover tests (issue 18).

A real HTTP server on a loopback port, in a thread, forwarding each POST to the node unless
its `mode` says otherwise:
* ``pass`` — forward the request and return the node's answer;
* ``timeout`` — answer nothing for `delay` seconds (longer than the client's timeout);
* ``error`` — HTTP 502 with an HTML body, as a broken load balancer would;
* ``garbage`` — HTTP 200 with JSON that is no JSON-RPC answer;
* ``frozen`` — forward, except that each method in `frozen` gets the answer of its first call
  after `freeze` again and again (a node stuck at an old tip).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import httpx

Mode = Literal["pass", "timeout", "error", "garbage", "frozen"]


class FaultProxy:
    def __init__(self, target: str, *, delay: float = 2.0) -> None:
        self.target = target
        self.delay = delay
        self.mode: Mode = "pass"
        self.frozen: dict[str, bytes | None] = {}
        self.requests = 0
        self._client = httpx.Client(timeout=30.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                proxy.requests += 1
                status, answer = proxy.answer(self.path, body, self.headers.get("Authorization"))
                if status == 0:
                    return  # timed out: the handler closes the connection without a word
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def freeze(self, method: str) -> None:
        """Answer `method` from its next call on as the node answers that call."""
        self.frozen[method] = None
        self.mode = "frozen"

    def answer(self, path: str, body: bytes, auth: str | None) -> tuple[int, bytes]:
        if self.mode == "timeout":
            time.sleep(self.delay)
            return 0, b""
        if self.mode == "error":
            return 502, b"<html>Bad Gateway</html>"
        if self.mode == "garbage":
            return 200, b'{"jsonrpc": "2.0", "id": 1, "answer": [1, 2, 3]}'
        if self.mode == "frozen":
            request = json.loads(body)
            method = request.get("method")
            stored = self.frozen.get(method)
            if stored is not None:
                replayed = json.loads(stored)
                replayed["id"] = request.get("id")
                return 200, json.dumps(replayed).encode()
            status, answer = self._forward(path, body, auth)
            if method in self.frozen:
                self.frozen[method] = answer
            return status, answer
        return self._forward(path, body, auth)

    def _forward(self, path: str, body: bytes, auth: str | None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if auth is not None:
            headers["Authorization"] = auth
        response = self._client.post(self.target.rstrip("/") + path, content=body, headers=headers)
        return response.status_code, response.content

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


@contextmanager
def fault_proxy(target: str, *, delay: float = 2.0) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target, delay=delay)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
