"""Redirects: a 3xx is a failure naming where it pointed, and nothing the user sends (headers,
body) ever reaches another origin.

The finding: Locust's client followed every 3xx to any origin; ``Authorization`` was dropped
but ``X-Session-Id`` went along on 32 of 32 requests, a 307 sent the POST body there too, and
301/302 turned POSTs into GETs that counted as successes. Now nothing is followed unless
``FOLLOW_REDIRECTS=same-origin`` (or ``--follow-redirects same-origin``), and then only within
the target's origin (same scheme, host and port), method and body kept for 307/308, at most
``MAX_REDIRECTS`` hops.

A real user (``PanaceaAPIUser._make_request``) in this process against the fault server; a
second ``FaultServer`` is "another origin": the same 127.0.0.1, another port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from panacea_locust.base_user import MAX_REDIRECTS, PanaceaAPIUser, origin_of, redirect_target
from panacea_locust.config import load_settings
from panacea_locust.event_handlers import PanaceaRun
from panacea_locust.payload_generator import RequestSpec

from .fault_server import FaultServer, ModeCounts
from .test_request_faults import GET_INFO, INFO, POST_SEARCH, SEARCH, counted, reasons, send

pytestmark = pytest.mark.faults

MakeUser = Callable[..., PanaceaAPIUser]
SAME_ORIGIN = {"FOLLOW_REDIRECTS": "same-origin"}


@pytest.fixture
def other() -> Iterator[FaultServer]:
    """Another origin: a second fault server (another port on 127.0.0.1)."""
    server = FaultServer(lifetime=60.0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def user_for(fault_server: FaultServer, new_run: Callable[..., PanaceaRun]) -> MakeUser:
    """``user_for(mode, SETTING=value, ..., options=None)``: a started user whose target is the
    fault server's ``mode``; ``options``: Locust's parsed command line (a namespace)."""

    def make(mode: str, options: Any = None, **settings: Any) -> PanaceaAPIUser:
        class User(PanaceaAPIUser):
            host = fault_server.url_for(mode)

        run = new_run(user_classes=[User], parsed_options=options)
        run.context.settings = load_settings({"REQUEST_TIMEOUT": 2.0, **settings})
        user = User(run.environment)
        user.on_start()
        return user

    return make


def the_origin(server: FaultServer) -> str:
    return server.url  # http://127.0.0.1:<port>: scheme, host and port


def paths(server: FaultServer) -> list[str]:
    return [r.path for r in server.received]


# --- the default: nothing is followed --------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("spec", [GET_INFO, POST_SEARCH], ids=["GET", "POST"])
def test_a_redirect_to_another_origin_is_a_failure_and_the_other_origin_gets_nothing(
    user_for: MakeUser, fault_server: FaultServer, other: FaultServer, status: int,
    spec: RequestSpec,
) -> None:  # fmt: skip
    fault_server.redirect_to = other.url_for("ok")
    user = user_for(f"redirect-{status}")
    for _ in range(2):  # on one kept-alive connection
        send(user, spec)
    assert counted(user, spec) == (2, 2)
    assert reasons(user) == {f"redirect to {the_origin(other)}": 2}
    assert other.received == []  # not one request: no X-Session-Id, no body
    assert fault_server.counts(f"redirect-{status}") == ModeCounts(2, 2, 0)
    sent = fault_server.received[0]
    assert sent.headers["x-session-id"] == user.session_id  # (what must not travel on)


def test_a_redirect_within_the_origin_is_a_failure_too_by_default(
    user_for: MakeUser, fault_server: FaultServer
) -> None:
    user = user_for("redirect-307")
    send(user, POST_SEARCH)
    assert counted(user, POST_SEARCH) == (1, 1)
    assert reasons(user) == {f"redirect to {the_origin(fault_server)}": 1}
    assert fault_server.counts("ok").started == 0


@pytest.mark.parametrize(
    ("mode", "redirect_to"),
    [
        ("redirect-no-location", ""),
        ("redirect-302", "ftp://127.0.0.1/files"),  # not http(s)
        ("redirect-302", "http://127.0.0.1:99999/x"),  # no such port
        ("redirect-302", "http:///no-host"),
    ],
    ids=["no Location", "ftp", "bad port", "no host"],
)
def test_a_redirect_without_a_usable_location_fails_as_redirect(
    user_for: MakeUser, fault_server: FaultServer, mode: str, redirect_to: str
) -> None:
    if redirect_to:
        fault_server.redirect_to = redirect_to
    user = user_for(mode, **SAME_ORIGIN)
    send(user, GET_INFO)
    assert reasons(user) == {"redirect": 1}
    assert len(fault_server.received) == 1


# --- FOLLOW_REDIRECTS=same-origin ------------------------------------------------------------
@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_same_origin_follows_307_and_308_keeping_method_body_and_headers(
    user_for: MakeUser, fault_server: FaultServer, status: int, relative: bool
) -> None:
    if relative:
        fault_server.redirect_to = "/ok"
    user = user_for(f"redirect-{status}", **SAME_ORIGIN)
    send(user, POST_SEARCH)
    assert counted(user, POST_SEARCH) == (1, 0), reasons(user)  # one request, answered
    first, second = fault_server.received
    assert (first.method, second.method) == ("POST", "POST")
    assert second.path == f"/ok{SEARCH}"
    assert second.body == first.body and b'"query":"error"' in second.body
    for header in ("x-session-id", "authorization", "content-type", "user-agent"):
        assert second.headers[header] == first.headers[header], header


@pytest.mark.parametrize("status", [301, 302, 303])
def test_same_origin_follows_a_get_but_never_turns_a_post_into_a_get(
    user_for: MakeUser, fault_server: FaultServer, status: int
) -> None:
    user = user_for(f"redirect-{status}", **SAME_ORIGIN)
    send(user, GET_INFO)
    assert counted(user, GET_INFO) == (1, 0), reasons(user)
    assert [r.method for r in fault_server.received] == ["GET", "GET"]
    assert fault_server.received[1].path == f"/ok{GET_INFO.url}"
    send(user, POST_SEARCH)
    assert counted(user, POST_SEARCH) == (1, 1)
    origin = the_origin(fault_server)
    assert reasons(user) == {f"redirect to {origin} ({status} would turn POST into GET)": 1}
    assert fault_server.counts("ok").started == 1  # the GET's; the POST went nowhere


@pytest.mark.parametrize("status", [302, 307])
def test_same_origin_still_fails_a_redirect_to_another_origin(
    user_for: MakeUser, fault_server: FaultServer, other: FaultServer, status: int
) -> None:
    fault_server.redirect_to = other.url_for("ok")
    user = user_for(f"redirect-{status}", **SAME_ORIGIN)
    send(user, GET_INFO)
    send(user, POST_SEARCH)
    assert reasons(user) == {f"redirect to {the_origin(other)}": 2}
    assert other.received == []


def test_same_origin_means_same_host_too_localhost_is_another_origin(
    user_for: MakeUser, fault_server: FaultServer
) -> None:
    """``localhost`` is the same machine but not the same origin as ``127.0.0.1``."""
    port = fault_server.url.rsplit(":", 1)[1]
    fault_server.redirect_to = f"http://localhost:{port}/ok"
    user = user_for("redirect-307", **SAME_ORIGIN)
    send(user, POST_SEARCH)
    assert reasons(user) == {f"redirect to http://localhost:{port}": 1}
    assert len(fault_server.received) == 1


def test_a_redirect_loop_stops_after_max_redirects_hops(
    user_for: MakeUser, fault_server: FaultServer
) -> None:
    user = user_for("redirect-loop", **SAME_ORIGIN)
    send(user, GET_INFO)
    assert counted(user, GET_INFO) == (1, 1)
    assert reasons(user) == {f"too many redirects (more than {MAX_REDIRECTS})": 1}
    assert fault_server.counts("redirect-loop").started == MAX_REDIRECTS + 1


def test_request_timeout_bounds_the_redirects_followed_too(
    user_for: MakeUser, fault_server: FaultServer
) -> None:
    fault_server.redirect_to = fault_server.url_for("hang")
    user = user_for("redirect-307", REQUEST_TIMEOUT=1.0, **SAME_ORIGIN)
    elapsed = send(user, POST_SEARCH, limit=2.5)
    assert 0.9 <= elapsed <= 2.5
    assert counted(user, POST_SEARCH) == (1, 1)
    assert reasons(user) == {"timeout": 1}
    entry = user.environment.stats.get(SEARCH, "POST")
    assert entry.max_response_time >= 900  # the hops' time is the request's


def test_a_redirect_listed_as_acceptable_counts_as_acceptable_and_is_not_followed(
    user_for: MakeUser, fault_server: FaultServer, other: FaultServer
) -> None:
    fault_server.redirect_to = other.url_for("ok")
    user = user_for("redirect-302", ACCEPTABLE_STATUS_CODES="400,404,302", **SAME_ORIGIN)
    send(user, GET_INFO)
    assert counted(user, GET_INFO) == (1, 0)
    assert user.run_context.tally.acceptable == {INFO: {"302": 1}}
    assert other.received == []


def test_the_follow_redirects_option_wins_over_the_setting(
    user_for: MakeUser, fault_server: FaultServer, tmp_path: Path
) -> None:
    """``--follow-redirects same-origin`` (registered with Locust's other options)."""
    from locust.argument_parser import LocustArgumentParser

    from panacea_locust.event_handlers import _add_arguments

    parser = LocustArgumentParser()
    _add_arguments(parser)
    options = parser.parse_args(
        ["--follow-redirects", "same-origin", "--results-dir", str(tmp_path)]
    )
    user = user_for("redirect-307", options=options)
    send(user, POST_SEARCH)
    assert counted(user, POST_SEARCH) == (1, 0), reasons(user)
    none = parser.parse_args(["--follow-redirects", "none", "--results-dir", str(tmp_path)])
    user = user_for("redirect-307", options=none, **SAME_ORIGIN)
    send(user, POST_SEARCH)
    assert reasons(user) == {f"redirect to {the_origin(fault_server)}": 1}
    with pytest.raises(SystemExit):
        parser.parse_args(["--follow-redirects", "anywhere"])


# --- the pure parts --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8080/a?b#c", "http://127.0.0.1:8080"),
        ("HTTP://API.Example.COM/x", "http://api.example.com:80"),
        ("https://api.example.com", "https://api.example.com:443"),
        ("https://user:pw@api.example.com:8443/", "https://api.example.com:8443"),
        ("http://[::1]:9000/", "http://[::1]:9000"),
        ("ftp://example.com/", None),
        ("http://example.com:99999/", None),
        ("http://exa mple.com/", None),
        ("http:///path", None),
        ("/relative", None),
    ],
)
def test_origin_of(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_redirect_target_resolves_and_refuses() -> None:
    base = "http://127.0.0.1:8080/api/v1/logs/info?bundle_id=1"
    assert redirect_target(base, "/ok/x?y=1#frag") == "http://127.0.0.1:8080/ok/x?y=1"
    assert redirect_target(base, "other") == "http://127.0.0.1:8080/api/v1/logs/other"
    assert redirect_target(base, "https://h.example/p") == "https://h.example/p"
    for bad in (None, "", " ", "/a b", "/a\r\nX-Injected: 1", ["/a", "/b"], "http:///x", "http:x"):
        assert redirect_target(base, bad) is None, bad
