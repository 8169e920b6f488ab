"""Secrets reach no output: every secret value is scrubbed from log records and from the
failure and exception lists of Locust that every report is made of.

The secrets are the settings of ``config.SECRET_FIELDS`` (``PANACEA_AUTH_TOKEN``,
``CLICKHOUSE_PASSWORD``). ``config.py`` already refuses one that is not printable ASCII without
whitespace, and shows the configuration masked; this is the second line of defence, for a
secret that reaches a message anyway: a target that echoes the token into a header a failure
reason quotes, a library that quotes a header it refuses, a driver that quotes its DSN.

Where: at the source, not in the files. Locust keeps one list of failures (``stats.errors``)
and one of exceptions (``runner.exceptions``); its CSV files, its HTML report, its web UI, the
error table on the console, a worker's reports to its master, and ``summary.json``,
``summary.md`` and ``junit.xml`` (whose failure reasons come from ``stats.errors``) are all
made from them. Scrubbed where an entry goes in, every one of those is clean, the ones written
while the run goes on (the CSV files each second, the web UI) included, and no file format has
to be parsed again; scrubbing files after writing would miss the web UI and the workers'
reports, and would have to know how each format escapes a string. The wrappers run only for a
failure or an exception, never for a request that went well, and are not installed at all
when no secret is set. Log records are scrubbed where they are made (the record factory, which
Locust's logging configuration does not replace) and by a filter on the handlers of the root,
``locust`` and ``panacea_locust`` loggers.

A secret is matched however it was escaped on the way (repr, JSON, HTML, a URL) and in any
case (a host name is lowercased): each of its characters other than a letter or digit may
appear escaped. A short secret masks every match, so a 4-character password also masks those
4 characters wherever they appear in a message.

Pure: no Locust import; :func:`install` works on the ``Environment`` it is given.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from panacea_locust.config import SECRET_FIELDS

if TYPE_CHECKING:
    from panacea_locust.config import Settings

MASK = "***"
#: named HTML entities of the characters an HTML writer escapes
_ENTITIES = {"&": ("&amp;",), "<": ("&lt;",), ">": ("&gt;",), '"': ("&quot;",),
             "'": ("&apos;",)}  # fmt: skip
#: the loggers whose handlers get the filter: Locust's configuration gives these handlers
_LOGGERS = ("", "locust", "locust.stats_logger", "panacea_locust")


def secret_values(settings: Settings) -> tuple[str, ...]:
    """The values of the secret settings that are set (not empty)."""
    values = []
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        text = value.get_secret_value() if value is not None else ""
        if text:
            values.append(text)
    return tuple(values)


def _char_pattern(char: str) -> str:
    """A regular expression for ``char`` as it may appear in a message: itself, or escaped by
    backslashes (repr, JSON, any depth), as ``\\uXXXX``/``\\xXX``, ``%XX`` or an HTML entity."""
    if char.isalnum() and char.isascii():
        return re.escape(char)
    code = ord(char)
    forms = [
        re.escape(char),
        re.escape(f"\\u{code:04x}"),
        re.escape(f"\\x{code:02x}"),
        re.escape(f"%{code:02x}"),
        re.escape(f"&#{code};"),
        re.escape(f"&#x{code:x};"),
        *(re.escape(entity) for entity in _ENTITIES.get(char, ())),
    ]
    return r"(?:\\*(?:" + "|".join(forms) + "))"


class Scrubber:
    """Replaces each of its secrets by ``MASK`` in text, in Locust's errors and in log
    records. Without secrets every method returns what it was given."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = ()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        known = set(self.secrets)
        new = {s for s in secrets if s and s not in known}
        if not new:
            return
        self.secrets = tuple(sorted(known | new, key=lambda s: (-len(s), s)))  # longest first
        self._pattern = re.compile(
            "|".join("".join(_char_pattern(c) for c in s) for s in self.secrets), re.IGNORECASE
        )

    def found(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None

    def scrub(self, text: str) -> str:
        """``text`` with every secret masked (``text`` itself when it holds none)."""
        if self._pattern is None or self._pattern.search(text) is None:
            return text
        return self._pattern.sub(MASK, text)

    def scrub_error(self, error: Any) -> Any:
        """A failure or an exception as Locust keeps it (an exception or a string): itself when
        it holds no secret; else a copy of the exception with its arguments scrubbed, or, where
        no such copy can be made, a :class:`RedactedError` with its text scrubbed."""
        if self._pattern is None or error is None:
            return error
        if isinstance(error, str):
            return self.scrub(error)
        try:
            shown, text = repr(error), str(error)
        except Exception:  # noqa: BLE001  (an exception whose repr fails: keep nothing of it)
            return RedactedError(MASK, f"{type(error).__name__}({MASK!r})")
        if not self.found(shown) and not self.found(text):
            return error
        if isinstance(error, BaseException):
            clean = self._scrubbed_copy(error)
            if clean is not None:
                return clean
        return RedactedError(self.scrub(text), self.scrub(shown))

    def _scrubbed_copy(self, error: BaseException) -> BaseException | None:
        try:
            clean = copy.copy(error)
            clean.args = tuple(self.scrub(a) if isinstance(a, str) else a for a in error.args)
            for name, value in vars(clean).items():
                if isinstance(value, str):
                    setattr(clean, name, self.scrub(value))
            if self.found(repr(clean)) or self.found(str(clean)):
                return None
        except Exception:  # noqa: BLE001  (an exception type that cannot be copied so)
            return None
        return clean

    def scrub_record(self, record: logging.LogRecord) -> None:
        """Scrub a log record in place: its message (arguments merged in when a secret is in
        it), its exception's traceback text and its stack."""
        if self._pattern is None:
            return
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  (a bad format: logging reports it when it emits)
            record.msg = self.scrub(str(record.msg))
            record.args = None
            return
        if self.found(message):
            record.msg, record.args = self.scrub(message), None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if self.found(text):
                record.exc_text = self.scrub(text)  # the formatter shows this text
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)


class RedactedError(Exception):
    """An exception that held a secret: its message and its repr, scrubbed."""

    def __init__(self, message: str, shown: str) -> None:
        super().__init__(message)
        self._shown = shown

    def __repr__(self) -> str:
        return self._shown


#: the process's scrubber: the secrets of every run of this process
SCRUBBER = Scrubber()


class SecretFilter(logging.Filter):
    """A logging filter that scrubs each record (and lets it through)."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        self.scrubber.scrub_record(record)
        return True


class _ScrubbingFactory:
    """The log record factory, wrapped: every record is scrubbed where it is made."""

    def __init__(self, inner: Callable[..., logging.LogRecord], scrubber: Scrubber) -> None:
        self.inner, self.scrubber = inner, scrubber

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        self.scrubber.scrub_record(record)
        return record


def install_logging(scrubber: Scrubber = SCRUBBER) -> None:
    """Scrub every log record of this process (idempotent): where it is made, which no
    logging configuration undoes, and by a filter on the handlers of the root, ``locust`` and
    ``panacea_locust`` loggers (for a record made elsewhere and handed to them)."""
    factory = logging.getLogRecordFactory()
    if not (isinstance(factory, _ScrubbingFactory) and factory.scrubber is scrubber):
        logging.setLogRecordFactory(_ScrubbingFactory(factory, scrubber))
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(
                isinstance(f, SecretFilter) and f.scrubber is scrubber for f in handler.filters
            ):
                handler.addFilter(SecretFilter(scrubber))


def install(environment: Any, settings: Settings, scrubber: Scrubber = SCRUBBER) -> None:
    """Scrub the secrets of ``settings`` from this Locust ``Environment``'s failure and
    exception lists and from the process's log records (once per environment).

    Without any secret only the logging part is installed: Locust's methods stay untouched.
    """
    scrubber.add(*secret_values(settings))
    install_logging(scrubber)
    if not scrubber.secrets or getattr(environment, "_secret_scrubber", None) is scrubber:
        return
    environment._secret_scrubber = scrubber
    stats = environment.stats
    log_error = stats.log_error

    def scrubbed_log_error(method: str, name: str, error: Any) -> None:
        log_error(method, name, scrubber.scrub_error(error))

    stats.log_error = scrubbed_log_error  # a failure's entry, on this process
    runner = environment.runner
    if runner is not None:
        log_exception = runner.log_exception

        def scrubbed_log_exception(node_id: str, msg: str, formatted_tb: str) -> None:
            log_exception(node_id, scrubber.scrub(msg), scrubber.scrub(formatted_tb))

        runner.log_exception = scrubbed_log_exception  # an exception's entry (a master's too)
    hook = environment.events.user_error
    fire = hook.fire

    def scrubbed_fire(*, reverse: bool = False, **kwargs: Any) -> None:
        # before the listeners: a worker sends ``str(exception)`` to its master from one
        if kwargs.get("exception") is not None:
            kwargs["exception"] = scrubber.scrub_error(kwargs["exception"])
        fire(reverse=reverse, **kwargs)

    hook.fire = scrubbed_fire
