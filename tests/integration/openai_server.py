"""A real local HTTP server speaking the OpenAI chat-completions API, for integration tests.

Replies come from the simulated model's script, so a run against it is deterministic.
The first ``fail_first`` requests get a 503, to exercise retries; requests for a model named
in ``latency_s`` are answered after that many seconds.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fedtextgrad_graph.models.simulated import simulated_reply


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


class OpenAICompatibleServer:
    def __init__(self, *, fail_first: int = 0, latency_s: dict[str, float] | None = None) -> None:
        self.fail_first = fail_first
        self.latency_s = dict(latency_s or {})
        self.requests: list[dict[str, Any]] = []
        self.failures = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    if server.failures < server.fail_first:
                        server.failures += 1
                        self._send(503, {"error": {"message": "overloaded, try again", "type": "server_error"}})
                        return
                    server.requests.append({**request, "authorization": self.headers.get("Authorization")})
                if delay := server.latency_s.get(request["model"]):
                    time.sleep(delay)
                messages = request["messages"]
                system = "\n".join(_text(m["content"]) for m in messages if m["role"] == "system")
                user = "\n".join(_text(m["content"]) for m in messages if m["role"] != "system")
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{len(server.requests)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": request["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": simulated_reply(system, user)},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> OpenAICompatibleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
