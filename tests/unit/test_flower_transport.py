"""The Flower transport against an in-memory Grid: which node serves which site, and what a
failed, refused or invalid site becomes, and what a site tells it. (Real SuperLinks and SuperNodes: tests/integration.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flwr.app import Message
from flwr.app.error import Error
from flwr.common.constant import ErrorCode
from flwr.proto.node_pb2 import NodeInfo  # pylint: disable=no-name-in-module
from flwr.supercore.task_identity import TaskIdentity

from fedtextgrad_graph.config import FlowerSettings
from fedtextgrad_graph.site.config import load_site_config
from fedtextgrad_graph.site.runner import SiteRunner
from fedtextgrad_graph.transport import ClientUnavailable
from fedtextgrad_graph.transport.flower import messages, site_app, site_executor
from fedtextgrad_graph.transport.flower.messages import IDENTIFY, payload, reply
from fedtextgrad_graph.transport.flower.server_transport import FlowerTransport, SiteError
from fedtextgrad_graph.wire import EvaluateRequest

from ..conftest import write_bbh
from .test_site import SITE

Handler = Callable[[Message], Message]


class FakeGrid:
    """Answers each pushed message at once with the handler of its destination node."""

    def __init__(self) -> None:
        self.nodes: dict[int, tuple[str, Handler]] = {}  # node id -> (registered name, handler)
        self.replies: dict[str, Message] = {}
        self.pushed: list[Message] = []

    def add(self, node_id: int, handler: Handler, *, registered: str = "") -> None:
        self.nodes[node_id] = (registered, handler)

    def get_nodes(self) -> list[NodeInfo]:
        return [NodeInfo(node_id=nid, name=name) if name else NodeInfo(node_id=nid) for nid, (name, _) in self.nodes.items()]

    def push_messages(self, messages: list[Message]) -> list[str]:
        ids = []
        for message in messages:
            message.metadata.__dict__["_message_id"] = message.object_id
            self.pushed.append(message)
            self.replies[message.object_id] = self.nodes[message.metadata.dst_node_id][1](message)
            ids.append(message.object_id)
        return ids

    def pull_messages(self, message_ids: list[str]) -> list[Message]:
        return [self.replies.pop(mid) for mid in list(message_ids) if mid in self.replies]


def site(client_id: str, *, scores: tuple[int, int] = (3, 6)) -> Handler:
    def handle(message: Message) -> Message:
        if message.metadata.message_type == IDENTIFY:
            return reply(message, {"client_id": client_id, "task": None})
        body = payload(message)
        return reply(message, {"client_id": body["client_id"], "correct": scores[0], "total": scores[1], "llm_calls": 6})

    return handle


def failing(error_code: int, reason: str) -> Handler:
    def handle(message: Message) -> Message:
        if message.metadata.message_type == IDENTIFY:
            return reply(message, {"client_id": "site-a", "task": None})
        return Message(Error(code=error_code, reason=reason), reply_to=message)

    return handle


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    """Messages are stamped with the current Flower run, as inside a ServerApp."""
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 7, 1, 1
    yield
    TaskIdentity._run_id = TaskIdentity._task_id = TaskIdentity._node_id = None


def transport(grid: FakeGrid, connect_timeout_s: float = 5.0) -> FlowerTransport:
    return FlowerTransport(FlowerSettings(connect_timeout_s=connect_timeout_s), grid=grid, poll_s=0.01)  # type: ignore[arg-type]


def request(client_id: str) -> EvaluateRequest:
    return EvaluateRequest(run_id="r", client_id=client_id, round=1, prompt="p", split="validation")


async def test_sites_are_found_by_the_client_id_they_report():
    grid = FakeGrid()
    grid.add(11, site("site-a", scores=(1, 6)))
    grid.add(12, site("site-b", scores=(5, 6)))
    flower = transport(grid)
    assert (await flower.evaluate(request("site-b")))["correct"] == 5
    assert (await flower.evaluate(request("site-a")))["correct"] == 1
    assert {m.metadata.dst_node_id for m in grid.pushed if m.metadata.message_type == "evaluate"} == {11, 12}
    await flower.aclose()


async def test_a_node_registered_under_another_name_cannot_claim_a_site():
    grid = FakeGrid()
    grid.add(11, site("site-a"), registered="site-b")  # node auth: registered as site-b, claims site-a
    flower = transport(grid, connect_timeout_s=1.5)
    with pytest.raises(ClientUnavailable, match="site-a is not connected"):
        await flower.evaluate(request("site-a"))
    await flower.aclose()


async def test_a_restarted_site_is_reached_on_its_new_node():
    grid = FakeGrid()
    grid.add(11, site("site-a", scores=(1, 6)))
    flower = transport(grid)
    assert (await flower.evaluate(request("site-a")))["correct"] == 1
    del grid.nodes[11]  # the old SuperNode went offline
    grid.add(12, site("site-a", scores=(4, 6)))  # the site came back as a new node
    flower._refreshed_at = 0.0  # look at the nodes again now
    assert (await flower.evaluate(request("site-a")))["correct"] == 4
    await flower.aclose()


@pytest.mark.parametrize(
    ("code", "error", "match"),
    [
        (ErrorCode.NODE_UNAVAILABLE, ClientUnavailable, "site site-a is gone"),
        (ErrorCode.CLIENT_APP_RAISED_EXCEPTION, SiteError, "site site-a: ValueError: bad data"),
    ],
)
async def test_error_replies_name_the_site(code, error, match):
    grid = FakeGrid()
    grid.add(11, failing(code, "ValueError: bad data"))
    flower = transport(grid)
    with pytest.raises(error, match=match):
        await flower.evaluate(request("site-a"))
    await flower.aclose()


def answering(body: dict) -> Handler:
    def handle(message: Message) -> Message:
        if message.metadata.message_type == IDENTIFY:
            return reply(message, {"client_id": "site-a", "task": None})
        return reply(message, body)

    return handle


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"client_id": "site-a", "correct": "3", "total": 6, "llm_calls": 6}, "invalid reply: malformed EvaluateResult: correct: Input should be a valid integer"),
        ({"client_id": "site-a", "total": 6, "llm_calls": 6}, "invalid reply: malformed EvaluateResult: correct: Field required"),
        ({"client_id": "site-a", "correct": 7, "total": 6, "llm_calls": 6}, r"impossible score \(7 correct of 6\)"),
        ({"client_id": "site-b", "correct": 3, "total": 6, "llm_calls": 6}, "sent a score for client 'site-b'"),
        ({"client_id": "site-a", "correct": 3, "total": 6, "llm_calls": 6, "empty_replies": {"task": {"calls": 6, "empty": -1}}}, r"impossible score"),
    ],
)
async def test_an_invalid_reply_is_a_site_error_not_a_crash(body, match):
    grid = FakeGrid()
    grid.add(11, answering(body))
    flower = transport(grid)
    with pytest.raises(SiteError, match=match):
        await flower.evaluate(request("site-a"))
    await flower.aclose()


def test_only_a_refusal_sends_its_text_to_the_server(tmp_path, monkeypatch, caplog):
    """Other failures may quote the site's data: the server hears only their kind."""
    write_bbh(tmp_path / "data.json", n=24)
    (tmp_path / "site.toml").write_text(SITE, encoding="utf-8")
    answers: list[Message] = []
    monkeypatch.setattr(site_executor, "pull_task_input", lambda client: (incoming, None, None, None))
    monkeypatch.setattr(site_executor, "push_message", lambda client, answer, context: answers.append(answer))
    monkeypatch.setattr(site_executor, "push_task_output", lambda *args: None)
    monkeypatch.setattr(site_executor, "HeartbeatSender", lambda fn: type("Beat", (), {"start": lambda s: None, "stop": lambda s: None})())

    runner = SiteRunner(load_site_config(tmp_path / "site.toml"))
    site_app.serve_with(runner)
    try:
        incoming = messages.request(1, messages.EVALUATE, {"run_id": "r", "client_id": "site-b", "round": 1, "prompt": "p", "split": "validation"})
        site_executor._execute("127.0.0.1:1", "token")
        assert "serves client 'site-a', not 'site-b'" in answers[-1].error.reason

        def leak(request):
            raise RuntimeError("could not parse 'patient 123: the answer is 42'")

        monkeypatch.setattr(runner, "evaluate", leak)
        incoming = messages.request(1, messages.EVALUATE, {"run_id": "r", "client_id": "site-a", "round": 1, "prompt": "p", "split": "validation"})
        site_executor._execute("127.0.0.1:1", "token")
        assert answers[-1].error.reason == "RuntimeError at the site (details in its log)"
        assert "patient 123" in caplog.text  # the site's own operator sees it
    finally:
        site_app.serve_with(None)
        runner.close()
