"""A fault-injecting HTTP proxy for tests: sits in front of a real OpenAI-compatible server on 127.0.0.1.

Every `period`-th request (period 5 = a 20% rate) gets the next fault of `kinds`, in order, so a run
meets each kind deterministically; the others are forwarded untouched.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

KINDS = ("429", "500", "503", "delay", "cut", "truncate", "malformed")
MORE_KINDS = ("408", "409")  # transient statuses a client must also retry


class FaultProxy:
    def __init__(self, upstream: str, period: int = 5, kinds: tuple[str, ...] = KINDS, delay_s: float = 5.0,
                 refuse_params: tuple[str, ...] = ()):
        self.upstream = upstream.rstrip("/")  # e.g. http://127.0.0.1:PORT (no /v1)
        self.period, self.kinds, self.delay_s = period, kinds, delay_s
        # Answer 400 naming the parameter, as a server that does not know it does (e.g. max_completion_tokens).
        self.refuse_params = refuse_params
        self.bodies: list[dict] = []  # every POSTed JSON body, in order
        self.requests = 0
        self.faults: Counter = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def next_fault(self) -> str | None:
        with self._lock:
            i = self.requests
            self.requests += 1
            if self.period and i % self.period == 0:
                kind = self.kinds[(i // self.period) % len(self.kinds)]
                self.faults[kind] += 1
                return kind
            return None

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                      declared: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) if declared is None else declared))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _forward(self, body: bytes | None) -> httpx.Response:
                url = proxy.upstream + self.path
                if body is None:
                    return httpx.get(url, timeout=600)
                return httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=600)

            def do_GET(self) -> None:
                resp = self._forward(None)
                self._send(resp.status_code, resp.content)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sent = json.loads(body or b"{}")
                proxy.bodies.append(sent)
                refused = [p for p in proxy.refuse_params if p in sent]
                if refused:
                    message = f"Unrecognized request argument supplied: {refused[0]}"
                    return self._send(400, json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                                                 "param": refused[0]}}).encode())
                fault = proxy.next_fault()
                error = json.dumps({"error": {"message": f"injected {fault}"}}).encode()
                if fault == "429":
                    return self._send(429, error, {"Retry-After": "0.2"})
                if fault in ("500", "503", "408", "409"):
                    return self._send(int(fault), error)
                if fault == "cut":  # drop the connection without a response
                    self.close_connection = True
                    self.connection.close()
                    return None
                if fault == "delay":  # longer than the client's timeout
                    time.sleep(proxy.delay_s)
                resp = self._forward(body)
                if fault == "truncate":  # promise the whole body, send half, hang up
                    self.close_connection = True
                    return self._send(resp.status_code, resp.content[: len(resp.content) // 2],
                                      declared=len(resp.content))
                if fault == "malformed":  # a well-formed HTTP answer whose model text is broken JSON
                    data = resp.json()
                    data["choices"][0]["message"]["content"] = '{"passages": ["cut off in the mid'
                    return self._send(200, json.dumps(data).encode())
                return self._send(resp.status_code, resp.content)

        return Handler
