"""A site's ClientApp executor: one long-lived process serves every message of its SuperNode.

Flower's default (``--isolation subprocess``) starts a fresh ClientApp process per message,
which pays this package's and TextGrad's imports and reloads the site's data each time
(seconds per message). ``fedtextgrad-graph site`` runs its SuperNode with
``--isolation process`` instead and executes the ClientApp tasks here, with the site
already loaded, through the SuperNode's Runtime API on loopback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx
from flwr.app import Message
from flwr.app.error import Error
from flwr.common.constant import ErrorCode, SubStatus
from flwr.proto.runtime_pb2 import AcquireTaskRequest, SendTaskHeartbeatRequest  # pylint: disable=no-name-in-module
from flwr.supercore.constant import TaskType
from flwr.supercore.heartbeat import HeartbeatSender
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supernode.runtime.run_clientapp import pull_task_input, push_message, push_task_output

from ...site.runner import RequestRefused
from .site_app import app

__all__ = ["serve_clientapp_tasks"]

logger = logging.getLogger(__name__)
POLL_S = 0.1


def serve_clientapp_tasks(runtime_api: str, stop: threading.Event) -> None:
    """Execute the SuperNode's ClientApp tasks with :data:`site_app.app` until ``stop`` is set
    (or an unexpected error, logged, ends the thread).

    Args:
        runtime_api: The SuperNode's Runtime API on loopback (``127.0.0.1:PORT``).
        stop: Set it to return after the task in progress.
    """
    acquirer = RuntimeHttpClient.from_server_address(
        runtime_api, True, None, [RuntimeVersionHttpInterceptor(component_name="SuperExec")]
    )
    try:
        while not stop.is_set():
            try:
                acquired = acquirer.AcquireTask(AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP]))
            except httpx.HTTPError:
                stop.wait(0.5)  # the SuperNode is starting or restarting
                continue
            if acquired.HasField("task") and acquired.token:
                _execute(runtime_api, acquired.token)
            else:
                stop.wait(POLL_S)
    except Exception as exc:  # the site process sees the thread end and stops with this line
        logger.error("stopped serving the SuperNode's messages: %s: %s", type(exc).__name__, exc)
        logger.debug("traceback", exc_info=exc)
    finally:
        acquirer.close()


def _execute(runtime_api: str, token: str) -> None:
    """One ClientApp task, as ``flwr-clientapp`` would run it, in this process."""
    client = RuntimeHttpClient.from_server_address(
        runtime_api,
        True,
        None,
        [RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"), RuntimeTokenHttpInterceptor(token)],
        retry_invoker=make_simple_http_retry_invoker(),
    )
    heartbeat = HeartbeatSender(_heartbeat_fn(client))
    heartbeat.start()
    context = None
    status, details = SubStatus.FAILED, "ClientApp task failed"
    try:
        message, context, _run, _fab = pull_task_input(client)
        try:
            answer = app(message=message, context=context)
            status, details = SubStatus.COMPLETED, ""
        except Exception as exc:  # one line for the site operator, the traceback at DEBUG
            logger.error(
                "could not answer the server's %s message: %s: %s",
                message.metadata.message_type,
                type(exc).__name__,
                " ".join(str(exc).split())[:300],
            )
            logger.debug("traceback", exc_info=exc)
            # The server learns only what kind of failure: an error's text may quote the site's data.
            details = str(exc) if isinstance(exc, RequestRefused) else f"{type(exc).__name__} at the site (details in its log)"
            answer = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=details), reply_to=message)
        push_message(client, answer, context)
    except Exception:
        logger.exception("could not execute a ClientApp task")
    finally:
        push_task_output(client, context, status, details)
        heartbeat.stop()
        client.close()


def _heartbeat_fn(client: RuntimeHttpClient) -> Callable[[], bool]:
    """Keep the task alive. Unlike Flower's own, a refused heartbeat (the server's run ended)
    does not send SIGINT to this process: the site serves the next run."""
    request = SendTaskHeartbeatRequest()

    def beat() -> bool:
        try:
            client.SendTaskHeartbeat(request)
        except httpx.TransportError:
            return False  # retried with backoff
        except httpx.HTTPStatusError as err:
            return err.response.status_code not in (httpx.codes.SERVICE_UNAVAILABLE, httpx.codes.GATEWAY_TIMEOUT)
        return True

    return beat
