"""The load generator's hot path, made faster for bench/ (README, Performance): same behaviour.

The payload helpers draw with ``Random.random()`` instead of ``choice``/``sample``; timestamps
come from a table; generated id pools are ``range`` objects; users share one generator when
no seed is set; the user's headers are its HTTP client's defaults; the response check takes a
C-level fast path; the garbage collector is tuned. Each is checked here against the slower
form it replaced, and the response check against a real HTTP server.
"""

from __future__ import annotations

import gc
import json
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from conftest import http_server

from panacea_locust import payload_generator as pg
from panacea_locust.config import load_settings
from panacea_locust.contract import ENDPOINTS
from panacea_locust.event_handlers import PanaceaRun
from panacea_locust.payload_generator import PayloadGenerator, PoolData, RequestSpec, UserPool


# --- drawing ---------------------------------------------------------------------------------
def test_pick_is_uniform() -> None:
    rand = random.Random(1).random
    seq = "abcde"
    counts = Counter(pg._pick(rand, seq) for _ in range(50_000))
    assert set(counts) == set(seq)
    assert all(abs(n - 10_000) < 500 for n in counts.values()), counts  # ~5 sigma


@pytest.mark.parametrize(("n", "k"), [(18, 1), (18, 3), (3, 2), (2, 2), (2, 5), (1, 1)])
def test_sample_gives_k_distinct_elements_uniformly(n: int, k: int) -> None:
    rand = random.Random(n * 10 + k).random
    seq = list(range(n))
    firsts: Counter[int] = Counter()
    for _ in range(20_000):
        got = pg._sample(rand, seq, k)
        assert len(got) == min(k, n) and len(set(got)) == len(got)
        assert set(got) <= set(seq)
        firsts[got[0]] += 1
    expected = 20_000 / n  # any element is as likely to come first
    assert all(abs(c - expected) < 6 * expected**0.5 for c in firsts.values()), firsts


def test_bundle_ids_are_sorted_distinct_own_and_of_every_size() -> None:
    s = load_settings()
    pool = UserPool.build(5, s)
    sizes: Counter[int] = Counter()
    for _ in range(20_000):
        ids = PayloadGenerator._bundle_ids(pool, most=10)
        assert ids == sorted(set(ids)) and set(ids) <= set(pool.bundle_ids)
        sizes[len(ids)] += 1
    assert set(sizes) == set(range(1, 11))  # 1..10, about equally often
    assert all(abs(n - 2_000) < 300 for n in sizes.values()), sizes


def test_hour_table_matches_strftime_and_covers_every_window() -> None:
    for h in range(len(pg._HOUR_STAMPS)):
        assert pg._HOUR_STAMPS[h] == pg.iso(pg.EPOCH + timedelta(hours=h))
    last_start = (pg.SPAN_DAYS - 1) * 24 + 23
    assert last_start + max(pg._WINDOW_HOURS) < len(pg._HOUR_STAMPS)


def test_time_windows_are_well_formed_and_in_order() -> None:
    pool = UserPool.build(0, load_settings())
    for _ in range(2_000):
        start, end = PayloadGenerator._time_window(pool)
        assert start < end and start >= "2024-01-01T00:00:00Z"
        assert len(start) == len(end) == 20 and start.endswith("Z")


# --- pools -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "r", "o"), [(201, 50, 0.3), (200, 20, 0.3), (37, 37, 0.5), (5, 1, 0)]
)
def test_id_windows_of_a_range_are_ranges_equal_to_the_list_rule(n: int, r: int, o: float) -> None:
    candidates = range(800, 800 + n)
    for g in range(3 * n):
        ids = pg.window_ids(g, candidates, r, o)
        assert isinstance(ids, range)
        assert list(ids) == pg.window(g, list(candidates), r, o)
    loaded = [5, 9, 11, 20]
    assert pg.window_ids(1, loaded, 2, 0.0) == pg.window(1, loaded, 2, 0.0) == [11, 20]


def test_generated_pools_hold_ranges_and_loaded_pools_lists() -> None:
    s = load_settings()
    assert isinstance(UserPool.build(3, s).bundle_ids, range)
    data = PoolData(bundle_ids=list(range(5000, 5100)), combo_ids=list(range(1, 40)))
    pool = UserPool.build(3, s, data)
    assert isinstance(pool.bundle_ids, list) and isinstance(pool.combo_ids, list)


def test_users_share_a_generator_only_without_a_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = UserPool.build(1, load_settings()), UserPool.build(2, load_settings())
    assert a.rng is b.rng
    monkeypatch.setenv("LOADTEST_SEED", "3")
    s = load_settings()
    c, d = UserPool.build(1, s), UserPool.build(2, s)
    assert c.rng is not d.rng
    again = UserPool.build(1, s)
    gen = PayloadGenerator(s)
    keys = [e.key for e in ENDPOINTS] * 5
    assert [gen.build(k, c) for k in keys] == [gen.build(k, again) for k in keys]


def test_forked_workers_do_not_share_the_shared_sequence() -> None:
    """``--processes`` forks after import: each worker must draw its own sequence."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_end, repr(pg._SHARED_RNG.random()).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = float(os.read(read_end, 64))
    os.close(read_end)
    os.close(write_end)
    assert child != pg._SHARED_RNG.random()


def test_request_spec_is_an_immutable_record() -> None:
    spec = RequestSpec("GET", "/x?a=1", "/x")
    assert (spec.method, spec.url, spec.name, spec.json) == ("GET", "/x?a=1", "/x", None)
    assert spec == RequestSpec("GET", "/x?a=1", "/x", None)
    with pytest.raises(AttributeError):
        spec.url = "/y"  # type: ignore[misc]


def test_every_builder_runs_and_unknown_keys_fail() -> None:
    s = load_settings()
    gen, pool = PayloadGenerator(s), UserPool.build(9, s)
    for e in ENDPOINTS:
        for _ in range(200):
            spec = gen.build(e.key, pool)
            assert spec.name == s.endpoint_path(e.key) and spec.method == e.method
            assert (spec.json is not None) == (e.method == "POST")
            if spec.json is not None:
                json.dumps(spec.json)  # plain JSON types only
    with pytest.raises(AttributeError):
        gen.build("NO_SUCH_ENDPOINT", pool)


# --- the garbage collector -------------------------------------------------------------------
@pytest.fixture
def gc_state() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("gc_state")
def test_gc_freezes_survivors_and_reclaims_after_a_ramp_down() -> None:
    from locust.env import Environment
    from locust.event import Events

    from panacea_locust.hotpath import gc_tuning

    env = Environment(events=Events())
    gc_tuning.GcTuning.install(env)
    assert gc.get_threshold() == gc_tuning.GC_THRESHOLD
    frozen = gc.get_freeze_count()
    assert frozen > 0

    class Cycle:  # a stopped user: reachable only from itself
        def __init__(self) -> None:
            self.me = self

    users = [Cycle() for _ in range(1000)]
    env.events.spawning_complete.fire(user_count=1000)
    assert gc.get_freeze_count() >= frozen + 1000
    del users  # the ramp-down stops them; frozen, they would never be collected
    env.events.spawning_complete.fire(user_count=10)
    assert gc.get_freeze_count() < frozen + 1000
    env.events.test_stop.fire(environment=env)
    assert gc.get_freeze_count() == 0


# --- the request path, against a real HTTP server --------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    """Answers by path: /ok (documented keys), /missing, /text, /array, /404, /500."""

    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]] = []
    INFO = {"bundle_id": 1, "sfdc_case_no": "000000001", "total_lines": 3}
    BODIES: dict[str, tuple[int, bytes]] = {
        "/ok": (200, json.dumps(INFO).encode()),
        "/missing": (200, b'{"bundle_id": 1}'),
        "/text": (200, b"<html>busy</html>"),
        "/array": (200, b"[1, 2]"),
        "/404": (404, b'{"detail": "unknown bundle"}'),
        "/500": (500, b'{"detail": "boom"}'),
    }

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append(dict(self.headers.items()))
        status, body = self.BODIES[self.path.split("?")[0]]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def http_target() -> Iterator[str]:
    with http_server(_Handler) as url:
        yield url


def test_response_check_and_headers_against_a_real_server(
    http_target: str, new_run: Callable[..., PanaceaRun]
) -> None:
    from panacea_locust.base_user import PanaceaAPIUser

    class User(PanaceaAPIUser):
        host = http_target

    run = new_run(user_classes=[User])  # its local runner's listener keeps the statistics
    env = run.environment
    user = User(env)
    user.on_start()
    name = "/api/v1/logs/info"  # documented keys: bundle_id, sfdc_case_no, total_lines
    _Handler.seen.clear()
    assert user._make_request(RequestSpec("GET", "/ok?bundle_id=1", name)) == _Handler.INFO
    assert user._make_request(RequestSpec("POST", "/ok", name, {"a": [1]})) == _Handler.INFO
    for path in ("/missing", "/text", "/array", "/404", "/500"):
        assert user._make_request(RequestSpec("GET", path, name)) is None

    entry = env.stats.get(name, "GET")
    assert (entry.num_requests, entry.num_failures) == (6, 4)  # 404 is acceptable
    errors = {str(e.error) for e in env.stats.errors.values()}
    assert any("without documented key(s) sfdc_case_no, total_lines" in e for e in errors)
    assert any("not JSON" in e for e in errors)
    assert any("(not a JSON object)" in e for e in errors)
    assert any("HTTP 500" in e for e in errors)
    for headers in _Handler.seen:  # GET and POST alike carry the user's identity
        assert headers["X-Session-Id"] == user.session_id
        assert headers["Authorization"] == f"Bearer mock-token-{user.user_id}"
        assert headers["Content-Type"] == "application/json"
        assert headers["User-Agent"].endswith(f"User-{user.user_id}")


# --- stopping a test -------------------------------------------------------------------------
def test_inspect_caches_are_warm_before_locust_stops_a_test() -> None:
    """``Runner.stop()`` calls ``inspect.stack()``; cold, that blocked the loop."""
    import inspect
    import linecache

    import locust.runners

    from panacea_locust.hotpath import inspect_warmup

    runners_file = inspect.getsourcefile(locust.runners)
    assert runners_file is not None
    linecache.clearcache()
    inspect.modulesbyfile.clear()
    inspect._filesbymodname.clear()  # type: ignore[attr-defined]
    inspect_warmup.warm_inspect_caches()
    assert runners_file in linecache.cache  # Runner.stop's own lines
    assert inspect.modulesbyfile.get(os.path.realpath(runners_file)) == "locust.runners"


# --- installed by the init hook --------------------------------------------------------------
@pytest.mark.usefixtures("gc_state")
def test_the_init_hook_installs_the_tweaks_and_the_run_on_that_environment() -> None:
    """One ``init`` listener on Locust's global events; what it installs goes on the
    environment it is given, not on the global events."""
    import linecache

    import locust
    from locust.env import Environment
    from locust.event import Events

    from panacea_locust import event_handlers
    from panacea_locust.hotpath import gc_tuning

    assert event_handlers._on_init in locust.events.init._handlers
    global_listeners = {name: list(hook._handlers) for name, hook in vars(locust.events).items()}
    env = Environment(events=Events())
    env.create_local_runner()
    linecache.clearcache()
    event_handlers._on_init(environment=env)  # as ``environment.events.init.fire`` calls it
    assert {n: list(h._handlers) for n, h in vars(locust.events).items()} == global_listeners
    assert isinstance(event_handlers.PanaceaRun.of(env), event_handlers.PanaceaRun)
    assert gc.get_threshold() == gc_tuning.GC_THRESHOLD
    assert any(isinstance(getattr(h, "__self__", None), gc_tuning.GcTuning)
               for h in env.events.spawning_complete._handlers)  # fmt: skip
    assert linecache.cache  # the inspect warm-up ran
    assert env.runner is not None
    env.runner.quit()
