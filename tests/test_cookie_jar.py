"""``LazyCookieJar`` sends and keeps exactly the cookies the standard jar does, on a real server."""

from __future__ import annotations

from collections.abc import Iterator
from http.cookiejar import CookieJar
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from conftest import http_server
from locust import FastHttpUser
from locust.env import Environment
from locust.event import Events

from panacea_locust.hotpath.cookie_jar import LazyCookieJar, use_lazy_cookie_jar


class _CookieHandler(BaseHTTPRequestHandler):
    """Sets and clears cookies by path; remembers the Cookie header of every request."""

    protocol_version = "HTTP/1.1"
    seen: list[str | None] = []
    SETS: dict[str, list[str]] = {
        "/login": ["sid=abc; Path=/", "scoped=1; Path=/api"],
        "/api/rotate": ["sid=def; Path=/"],
        "/logout": ["sid=; Path=/; Max-Age=0"],
    }

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Cookie"))
        self.send_response(200)
        for value in self.SETS.get(self.path, []):
            self.send_header("Set-Cookie", value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def cookie_server() -> Iterator[str]:
    with http_server(_CookieHandler) as url:
        yield url


PATHS = ["/x", "/login", "/x", "/api/y", "/api/rotate", "/api/y", "/logout", "/x", "/api/y"]


def _cookies_sent(host: str, lazy: bool) -> list[str | None]:
    class User(FastHttpUser):
        pass

    User.host = host
    user = User(Environment(user_classes=[User], events=Events()))
    if lazy:
        use_lazy_cookie_jar(user.client)
    _CookieHandler.seen.clear()
    for path in PATHS:
        user.client.get(path)
    return list(_CookieHandler.seen)


def test_sends_the_same_cookies_as_the_standard_jar(cookie_server: str) -> None:
    standard = _cookies_sent(cookie_server, lazy=False)
    lazy = _cookies_sent(cookie_server, lazy=True)
    assert lazy == standard
    # the sequence exercises every case: none yet, set, path-scoped, replaced, deleted
    assert standard == [None, None, "sid=abc", "scoped=1; sid=abc", "scoped=1; sid=abc",
                        "scoped=1; sid=def", "sid=def", None, "scoped=1"]  # fmt: skip


def test_the_framework_users_client_uses_it_at_both_levels() -> None:
    from panacea_locust.base_user import PanaceaAPIUser

    class User(PanaceaAPIUser):
        host = "http://127.0.0.1:9"

    user = User(Environment(user_classes=[User], events=Events()))
    assert isinstance(user.client.cookiejar, LazyCookieJar)
    assert user.client.client.cookiejar is user.client.cookiejar


def test_an_empty_jar_does_not_search_and_a_full_one_does() -> None:
    searched: list[object] = []

    class Spy(LazyCookieJar):
        def _cookies_for_request(self, request: Any) -> list[Any]:
            searched.append(request)
            return []

    jar = Spy()
    jar.add_cookie_header(object())
    assert searched == []
    standard = CookieJar()
    jar_with_one = Spy()
    _fill(standard)
    for cookie in standard:
        jar_with_one.set_cookie(cookie)
    jar_with_one.add_cookie_header(_Request())
    assert len(searched) == 1


def test_existing_cookies_are_kept_when_the_jar_is_swapped(cookie_server: str) -> None:
    class User(FastHttpUser):
        pass

    User.host = cookie_server
    user = User(Environment(user_classes=[User], events=Events()))
    user.client.get("/login")
    jar = use_lazy_cookie_jar(user.client)
    assert sorted(c.name for c in jar) == ["scoped", "sid"]
    _CookieHandler.seen.clear()
    user.client.get("/x")
    assert _CookieHandler.seen == ["sid=abc"]


class _Request:
    """The little of ``urllib.request.Request`` that ``add_cookie_header`` reads."""

    unverifiable = False
    type = "http"
    host = "127.0.0.1"

    def get_full_url(self) -> str:
        return "http://127.0.0.1/x"

    def get_host(self) -> str:
        return self.host

    def has_header(self, _name: str) -> bool:
        return False

    def add_unredirected_header(self, *_: Any) -> None:
        pass

    def get_origin_req_host(self) -> str:
        return self.host

    def is_unverifiable(self) -> bool:
        return False


def _fill(jar: CookieJar) -> None:
    from http.cookiejar import Cookie

    fields: dict[str, Any] = {"version": 0, "name": "sid", "value": "abc", "port": None,
                              "port_specified": False, "domain": "127.0.0.1",
                              "domain_specified": False, "domain_initial_dot": False,
                              "path": "/", "path_specified": True, "secure": False,
                              "expires": None, "discard": False, "comment": None,
                              "comment_url": None, "rest": {}}  # fmt: skip
    jar.set_cookie(Cookie(**fields))
