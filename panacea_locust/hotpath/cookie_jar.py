"""``LazyCookieJar``: the standard cookie jar, minus its lock and walks while it is empty and
an answer sets no cookie, about 6 % of the framework's cost per request (``bench/``) for an API
that sets none. It can go once Locust's ``FastHttpSession`` skips an empty jar by itself.
"""

from __future__ import annotations

from http.cookiejar import CookieJar
from typing import Any


class LazyCookieJar(CookieJar):
    """A :class:`~http.cookiejar.CookieJar` with fast paths for the no-cookie case; with
    cookies it is the standard jar, so a server that sets some (a sticky session, say) gets
    them back exactly as before."""

    def add_cookie_header(self, request: Any) -> None:
        # ``_cookies`` (domain -> path -> name -> Cookie) is what the base class searches;
        # empty, it would add no header and expire nothing
        if self._cookies:  # type: ignore[attr-defined]
            super().add_cookie_header(request)

    def extract_cookies(self, response: Any, request: Any) -> None:
        headers = response.info()  # what the base class reads; case-insensitive
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response, request)


def use_lazy_cookie_jar(session: Any) -> LazyCookieJar:
    """Give a ``FastHttpSession`` (and the user agent under it) one ``LazyCookieJar``,
    keeping any cookie already in its jar."""
    jar = LazyCookieJar()
    for cookie in session.cookiejar:
        jar.set_cookie(cookie)
    session.cookiejar = jar
    session.client.cookiejar = jar
    return jar
