"""A real local HTTP server speaking the OpenAI chat-completions API, for integration tests.

Replies come from ``reply(model, system, user)`` (the simulated model's script by default),
so a run against it is deterministic. It can misbehave on purpose:

- ``fail_first``: the first that many requests get a 503;
- ``latency_s``: requests for a model named there are answered after that many seconds;
- ``faults``: a queue of misbehaviours, one per request, taken before normal replies:
  ``"invalid_json"`` (a 200 whose body is cut short), ``"rate_limit"`` (429 with
  ``Retry-After: retry_after_s``), ``"hang"`` (no reply for ``hang_s``, then the connection
  closes), ``"drop"`` (the connection closes without a reply), or an HTTP status code.
  Add more at any time with :meth:`misbehave`.
- :meth:`outage`: every request gets the same misbehaviour (503 by default, or ``"drop"``)
  for that many seconds from the next request on, then the server answers normally again.

It also serves the legacy ``/v1/completions`` endpoint as vLLM does for prompt scoring: with
``echo=true`` and ``logprobs`` set, the prompt's tokens (whitespace-led words) and their
logprobs from ``token_logprob(model, token)``; ``token_logprob=None`` answers with
``"logprobs": null``, as a server that does not return prompt logprobs.

``faults_served`` lists ``(time, fault)`` per misbehaving reply; ``requests`` the answered ones,
each with its ``"received_at"`` time and the ``"usage"`` block its reply reported:
``usage(model, system, user, reply)`` gives its ``(prompt_tokens, completion_tokens)`` (1 and 1
by default).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from fedtextgrad_graph.models.simulated import simulated_reply

Fault = str | int
Reply = Callable[[str, str, str], str]
Usage = Callable[[str, str, str, str], tuple[int, int]]
TokenLogprob = Callable[[str, str], float]  # (model, token) -> natural-log probability
_TOKEN = re.compile(r"\s*\S+")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _simulated(model: str, system: str, user: str) -> str:
    return simulated_reply(system, user)


def _token_logprob(model: str, token: str) -> float:
    """A deterministic stand-in for a language model: longer tokens are less likely."""
    return -0.25 * len(token.strip()) - 0.5


class OpenAICompatibleServer:
    def __init__(
        self,
        *,
        fail_first: int = 0,
        latency_s: dict[str, float] | None = None,
        reply: Reply | None = None,
        faults: Iterable[Fault] = (),
        retry_after_s: float = 1.0,
        hang_s: float = 30.0,
        usage: Usage | None = None,
        token_logprob: TokenLogprob | None = _token_logprob,
    ) -> None:
        self.fail_first = fail_first
        self.latency_s = dict(latency_s or {})
        self.reply = reply or _simulated
        self.usage = usage or (lambda model, system, user, reply: (1, 1))
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s
        self.token_logprob = token_logprob
        self.requests: list[dict[str, Any]] = []
        self.faults_served: list[tuple[float, Fault]] = []
        self.failures = 0
        self._faults: deque[Fault] = deque(faults)
        self._outage: tuple[float, Fault] | None = None  # (seconds, fault) until it starts
        self._outage_until = 0.0
        self._outage_fault: Fault = 503
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _misbehave(self, fault: Fault) -> None:
                if fault == "invalid_json":
                    self._send(200, b'{"id": "chatcmpl-x", "choices": [{"message": {"content": "Unterminated')
                elif fault == "rate_limit":
                    error = {"error": {"message": "slow down", "type": "rate_limit_error"}}
                    self._send(429, error, {"Retry-After": f"{server.retry_after_s:g}"})
                elif fault == "hang":
                    time.sleep(server.hang_s)
                    self.close_connection = True
                elif fault == "drop":
                    self.close_connection = True
                elif isinstance(fault, int):
                    self._send(fault, {"error": {"message": f"status {fault}", "type": "server_error"}})
                else:
                    raise ValueError(f"unknown fault {fault!r}")

            def do_POST(self) -> None:
                route = self.path.rstrip("/")
                if route not in ("/v1/chat/completions", "/v1/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    now = time.time()
                    fault: Fault | None = None
                    if server._outage is not None:
                        seconds, server._outage_fault = server._outage
                        server._outage, server._outage_until = None, now + seconds
                    if now < server._outage_until:
                        fault = server._outage_fault
                    elif server.failures < server.fail_first:
                        server.failures += 1
                        fault = 503
                    elif server._faults:
                        fault = server._faults.popleft()
                    if fault is not None:
                        server.faults_served.append((now, fault))
                    else:
                        answered = {**request, "authorization": self.headers.get("Authorization"), "received_at": now}
                        server.requests.append(answered)
                if fault is not None:
                    self._misbehave(fault)
                    return
                if delay := server.latency_s.get(request["model"]):
                    time.sleep(delay)
                if route == "/v1/completions":
                    self._send(200, server._completion(request))
                    return
                messages = request["messages"]
                system = "\n".join(_text(m["content"]) for m in messages if m["role"] == "system")
                user = "\n".join(_text(m["content"]) for m in messages if m["role"] != "system")
                content = server.reply(request["model"], system, user)
                prompt_tokens, completion_tokens = server.usage(request["model"], system, user, content)
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
                answered["usage"] = usage
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
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": usage,
                    },
                )

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _completion(self, request: dict[str, Any]) -> dict[str, Any]:
        """A legacy completion that echoes the prompt: with ``echo`` and ``logprobs`` set, the
        prompt tokens' logprobs (the first token's is None, as vLLM returns them), or None
        when ``token_logprob`` is None (a server without prompt logprobs)."""
        prompt = str(request["prompt"])
        tokens = _TOKEN.findall(prompt)
        logprobs: dict[str, Any] | None = None
        if request.get("echo") and request.get("logprobs") is not None and self.token_logprob is not None:
            offsets = [m.start() for m in _TOKEN.finditer(prompt)]
            values = [None] + [self.token_logprob(request["model"], token) for token in tokens[1:]]
            logprobs = {"tokens": tokens, "token_logprobs": values, "text_offset": offsets, "top_logprobs": None}
        return {
            "id": f"cmpl-{len(self.requests)}",
            "object": "text_completion",
            "created": 0,
            "model": request["model"],
            "choices": [{"index": 0, "text": prompt if request.get("echo") else "", "logprobs": logprobs, "finish_reason": "length"}],
            "usage": {"prompt_tokens": len(tokens), "completion_tokens": 0, "total_tokens": len(tokens)},
        }

    def misbehave(self, *faults: Fault) -> None:
        """Queue misbehaviours for the next requests (one each)."""
        with self._lock:
            self._faults.extend(faults)

    def outage(self, seconds: float, fault: Fault = 503) -> None:
        """Answer every request with ``fault`` for ``seconds`` from the next request on."""
        with self._lock:
            self._outage = (seconds, fault)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
