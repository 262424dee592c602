"""A lean OpenAI-compatible chat endpoint with a fixed latency, for benchmarks.

    python benchmarks/latency_endpoint.py [--latency 0.2] [--port 0]

One asyncio process (HTTP/1.1 keep-alive, no framework) that holds hundreds of requests at once,
so it is never the bottleneck: each ``POST /v1/chat/completions`` is answered after ``latency``
seconds with the simulated model's scripted reply (deterministic). ``GET /stats`` returns the
answered request count and the wall-clock time (``time.time()``) of the first request. Prints
``port N`` on its first line once it listens. Benchmarks start it with :func:`start_endpoint`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from fedtextgrad_graph.models.simulated import simulated_reply

_stats: dict[str, Any] = {"requests": 0, "first_request_at": None}


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _completion(request: dict[str, Any]) -> dict[str, Any]:
    messages = request["messages"]
    system = "\n".join(_text(m["content"]) for m in messages if m["role"] == "system")
    user = "\n".join(_text(m["content"]) for m in messages if m["role"] != "system")
    content = simulated_reply(system, user)
    prompt_tokens, completion_tokens = max(1, len(system + user) // 4), max(1, len(content) // 4)
    return {
        "id": f"chatcmpl-{_stats['requests']}",
        "object": "chat.completion",
        "created": 0,
        "model": request["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
    }


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "GET" and path.startswith("/stats"):
                reply: dict[str, Any] = _stats
            else:
                if _stats["first_request_at"] is None:
                    _stats["first_request_at"] = time.time()
                await asyncio.sleep(latency)
                _stats["requests"] += 1
                reply = _completion(json.loads(body))
            data = json.dumps(reply).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _main(latency: float, port: int) -> None:
    server = await asyncio.start_server(lambda r, w: _serve(r, w, latency), "127.0.0.1", port, backlog=1024)
    sys.stdout.write(f"port {server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


class Endpoint:
    """A running endpoint process: its ``base_url``, ``stats()``, and ``stop()`` (by pid)."""

    def __init__(self, latency: float) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--latency", str(latency)], stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        first = self._process.stdout.readline().split()
        if first[:1] != ["port"]:
            self.stop()
            raise RuntimeError("the latency endpoint did not start")
        self.base_url = f"http://127.0.0.1:{first[1]}/v1"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/stats", timeout=10) as reply:
            stats: dict[str, Any] = json.loads(reply.read())
        return stats

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def start_endpoint(latency: float) -> Endpoint:
    """Start an endpoint process answering after ``latency`` seconds, on a free loopback port."""
    return Endpoint(latency)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(_main(args.latency, args.port))
