"""A kept-alive connection the target closes just as a request goes out on it.

A server closes an idle keep-alive connection when its timeout fires; a request sent on it at
that moment never reaches the application, and no byte of answer comes back. Found in CI: an
open-model run counted one request more than the reference API received; a POST failed as
``connection error (HTTPConnectionClosed)`` against a healthy API (docs/reliability.md).

The fault server's ``idle-close`` mode answers, then closes each connection under the next
request sent on it, unread: every request after a user's first meets a stale connection. A
connection reset right after it was opened is another matter: that is the target's answer, never
resent (``test_request_faults.py::test_a_reset_is_a_connection_error_and_not_resent``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from geventhttpclient.client import HTTPClientPool

from panacea_locust.base_user import PanaceaAPIUser
from panacea_locust.event_handlers import PanaceaRun

from .conftest import MakeUser
from .fault_server import FaultServer
from .test_request_faults import GET_INFO, POST_SEARCH, counted, reasons, send

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("spec", [POST_SEARCH, GET_INFO], ids=["POST", "GET"])
def test_a_request_on_a_connection_closed_under_it_is_resent_once_and_counted(
    user_for: MakeUser, fault_server: FaultServer, spec: object
) -> None:
    user = user_for("idle-close")
    for _ in range(3):
        send(user, spec)  # type: ignore[arg-type]
    assert counted(user, spec) == (3, 0), reasons(user)  # type: ignore[arg-type]
    counts = fault_server.counts("idle-close")
    # the target handled each request once; two were sent on a connection it closed unread
    assert (counts.started, counts.closed_unread) == (3, 2), counts
    assert [r.body for r in fault_server.received] == [fault_server.received[0].body] * 3
    assert user.run_context.tally.stale_resends == 2


def test_users_sharing_a_connection_pool_are_left_to_the_http_client(
    fault_server: FaultServer, new_run: Callable[..., PanaceaRun]
) -> None:
    """With Locust's ``client_pool`` shared among users, which user's send used which
    connection is not known: no resend is attempted (geventhttpclient's own rules apply)."""
    shared = HTTPClientPool(concurrency=4)

    class Sharing(PanaceaAPIUser):
        host = fault_server.url_for("idle-close")
        client_pool = shared

    class Own(PanaceaAPIUser):
        host = fault_server.url_for("idle-close")

    run = new_run(user_classes=[Sharing, Own])
    sharing, own = Sharing(run.environment), Own(run.environment)
    assert "_urlopen" not in vars(sharing.client.client)  # the class's own method
    assert "_urlopen" in vars(own.client.client)  # wrapped for this user
