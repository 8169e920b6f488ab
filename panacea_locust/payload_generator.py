"""Per-user data pools (the distribution rules of docs/configuration.md) and payload builders.

Pure logic: no Locust and no network imports, so the rules are unit tested directly. Each
virtual user owns a :class:`UserPool` built from its global index ``g``; every id a payload
names comes from that pool. With a seed, pools and the sequence of payloads are reproducible.
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from panacea_locust.config import Settings
from panacea_locust.contract import (
    BUNDLE_STATUSES,
    COMPONENTS,
    ENDPOINTS_BY_KEY,
    HEATMAP_GROUP_BY,
    HISTOGRAM_INTERVALS,
    LOG_LEVELS,
    MAX_BUNDLE_IDS,
    REPORT_SORT_BY,
    SORT_ORDERS,
)

SEARCH_STRINGS = (
    "Cassandra", "timeout", "heartbeat", "Stargate", "OOM", "disk full", "leader election",
    "snapshot", "vdisk", "RPC failed", "degraded", "checksum", "Zookeeper session", "curator scan",
)  # fmt: skip
QUESTIONS = (
    "Why did {component} restart on {ip}?",
    "Summarise the {level} messages from {component} in this bundle.",
    "Is there a disk failure on CVM {ip}?",
    "What caused the cluster to become degraded around {time}?",
    "Which services logged fatal errors, and in what order?",
    "Explain the {component} errors and suggest a next step for the support engineer.",
    "Did any node lose its Zookeeper session before {time}?",
)
FIRST_NAMES = ("john", "jane", "alex", "maria", "wei", "priya", "omar", "sara", "li", "tom")
LAST_NAMES = ("doe", "smith", "kumar", "garcia", "chen", "nguyen", "patel", "jones", "kim")
#: Log bundles in the generated data set span this period (the reference API's too).
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
SPAN_DAYS = 180

#: The kinds a database can supply; an empty kind is generated.
POOL_KINDS = ("sessions", "bundle_ids", "combo_ids", "sfdc_cases", "bundle_paths")


@dataclass
class PoolData:
    """Ids loaded from a database; an empty list means 'generate this kind'."""

    sessions: list[tuple[str, str]] = field(default_factory=list)  # (user_id, session_id)
    bundle_ids: list[int] = field(default_factory=list)
    combo_ids: list[int] = field(default_factory=list)
    sfdc_cases: list[str] = field(default_factory=list)
    bundle_paths: list[str] = field(default_factory=list)
    fallbacks: dict[str, str] = field(default_factory=dict)  # kind -> why it was generated
    source: str = "generated"  # "database" when any kind was loaded

    def describe(self) -> dict[str, Any]:
        """What ``run.data_source`` in summary.json says about this data."""
        loaded = {k: len(getattr(self, k)) for k in POOL_KINDS if getattr(self, k)}
        return {
            "mode": "database" if loaded else "generated",
            "loaded": loaded,
            "generated": [k for k in POOL_KINDS if k not in loaded],
            "fallbacks": dict(self.fallbacks),
        }


def window_step(range_per_user: int, overlap: float) -> int:
    """Offset between consecutive users' windows: ``max(1, round(R * (1 - o)))``, half up."""
    return max(1, int(range_per_user * (1 - overlap) + 0.5))


def window_start(index: int, n_candidates: int, range_per_user: int, overlap: float) -> int:
    """Position of user ``index``'s first candidate: ``(g * s) mod (N - R + 1)``."""
    if not 1 <= range_per_user <= n_candidates:
        raise ValueError(f"range per user {range_per_user} must be in 1..{n_candidates}")
    span = n_candidates - range_per_user + 1
    return (index * window_step(range_per_user, overlap)) % span


def window(index: int, candidates: Sequence[Any], range_per_user: int, overlap: float) -> list[Any]:
    """User ``index``'s ``R`` consecutive candidates (R is clamped to the candidates there are)."""
    size = min(range_per_user, len(candidates))
    start = window_start(index, len(candidates), size, overlap)
    return list(candidates[start : start + size])


def window_ids(index: int, candidates: Sequence[int], range_per_user: int,
               overlap: float) -> Sequence[int]:  # fmt: skip
    """``window`` for ids; a ``range`` of candidates (generated ids) gives a ``range``, which
    holds no per-id memory (a list of 50 ids is about 1.8 kB per user)."""
    if isinstance(candidates, range):
        size = min(range_per_user, len(candidates))
        start = window_start(index, len(candidates), size, overlap)
        return candidates[start : start + size]
    return window(index, candidates, range_per_user, overlap)


def sfdc_case_for_bundle(bundle_id: int, base: int) -> str:
    """The case a generated bundle belongs to: the reference API uses the same rule."""
    return f"{base + bundle_id:09d}"


#: Without a seed nothing needs to be reproducible, so users share one generator: a
#: ``random.Random`` holds 2.5 kB of state, 12 MB for 5,000 users (gevent runs one user at a
#: time, so sharing is safe). Reseeded in every forked process (``--processes``), or all
#: workers would draw the same sequence.
_SHARED_RNG = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SHARED_RNG.seed)


def _rng_for(seed: int | None, index: int, purpose: str) -> random.Random:
    """The generator for one user and purpose: its own (seeded) with a seed, else the shared."""
    if seed is None:
        return _SHARED_RNG
    digest = hashlib.blake2b(f"{seed}:{index}:{purpose}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def private_ip(rng: random.Random) -> str:
    """An IPv4 address in a private range: payload data, never a destination."""
    block = rng.randrange(3)
    if block == 0:
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if block == 1:
        return f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def bundle_path(rng: random.Random) -> str:
    """A remote log bundle path in the contract's format."""
    day = EPOCH + timedelta(days=rng.randrange(SPAN_DAYS), seconds=rng.randrange(86_400))
    return (
        f"/users/{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}/NTNX-Log-"
        f"{day:%Y-%m-%d}-{rng.randrange(10_000, 100_000)}-{int(day.timestamp())}-PE-"
        f"{private_ip(rng)}.zip"
    )


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the hot path ----------------------------------------------------------------------------
# Every request builds a payload, so the builders below avoid the pure-Python parts of
# ``random`` (``choice``/``randint``/``sample`` go through ``_randbelow``, about 1 us each) and
# draw with ``Random.random()`` (one C call): ``int(random() * n)`` is uniform over ``range(n)``
# to within n / 2**53. Timestamps come from a table instead of ``strftime``.

#: ``EPOCH`` plus every whole hour of the span (and one day beyond, for a window's end), as
#: the contract's ISO 8601 strings.
_HOUR_STAMPS: tuple[str, ...] = tuple(
    iso(EPOCH + timedelta(hours=h)) for h in range((SPAN_DAYS + 1) * 24 + 1)
)
_WINDOW_HOURS = (1, 2, 6, 12, 24)
_FILTER_LEVELS = LOG_LEVELS[:3]
_PAGE_SIZES = (10, 20, 20, 50, 100)  # search
_PAGE_NOS = (1, 1, 1, 2, 3)
_REPORT_PAGE_NOS = (1, 1, 2)
_REPORT_PAGE_SIZES = (10, 20, 50)


def _pick(rand: Callable[[], float], seq: Sequence[Any]) -> Any:
    """One element of ``seq``, uniformly (``rand`` is a ``Random.random``)."""
    return seq[int(rand() * len(seq))]


def _sample(rand: Callable[[], float], seq: Sequence[Any], k: int) -> list[Any]:
    """``k`` distinct elements of ``seq`` in random order (fewer if ``seq`` is shorter).

    Made for the small ``k`` of the filters (1 to 3): a list is a cheaper "seen" than a set.
    """
    n = len(seq)
    if k > n:
        k = n
    picked: list[int] = []
    while len(picked) < k:
        i = int(rand() * n)
        if i not in picked:
            picked.append(i)
    return [seq[i] for i in picked]


@dataclass
class UserPool:
    """Everything one virtual user draws from; built once, when the user starts."""

    index: int
    user_id: str
    session_id: str
    session_from_database: bool
    bundle_ids: Sequence[int]  #: a ``range`` for generated ids, a list for loaded ones
    combo_ids: Sequence[int]
    sfdc_cases: list[str]
    bundle_paths: list[str]
    cvm_ips: list[str]
    rng: random.Random

    @classmethod
    def build(cls, index: int, settings: Settings, data: PoolData | None = None) -> UserPool:
        data = data or PoolData()
        seed = settings.loadtest_seed
        rng = _rng_for(seed, index, "identity")
        overlap = settings.bundle_id_overlap_percentage

        bundles = data.bundle_ids or range(settings.bundle_id_min, settings.bundle_id_max + 1)
        bundle_ids = window_ids(index, bundles, settings.bundle_id_range_per_user, overlap)
        combos = data.combo_ids or range(settings.combo_id_min, settings.combo_id_max + 1)
        combo_ids = window_ids(index, combos, settings.combo_id_range_per_user, overlap)

        n_cases = settings.sfdc_cases_per_user
        if data.sfdc_cases:
            cases = window(index, data.sfdc_cases, n_cases, overlap)
        else:  # the cases of n_cases bundles spread evenly over the user's window
            picks = [bundle_ids[i * len(bundle_ids) // n_cases] for i in range(n_cases)]
            cases = [sfdc_case_for_bundle(b, settings.sfdc_case_base) for b in picks]

        n_paths = settings.bundle_paths_per_user
        if data.bundle_paths:
            paths = window(index, data.bundle_paths, n_paths, overlap)
        else:
            paths = [bundle_path(rng) for _ in range(n_paths)]
        cvm_ips = sorted({p.rsplit("-PE-", 1)[-1].removesuffix(".zip") for p in paths})

        if index < len(data.sessions):
            user_id, session_id = data.sessions[index]
            from_db = True
        else:
            user_id = f"{settings.user_id_prefix}_{index:05d}"
            session_id = (
                uuid.UUID(int=rng.getrandbits(128)).hex if seed is not None else uuid.uuid4().hex
            )
            from_db = False
        return cls(
            index=index,
            user_id=user_id,
            session_id=session_id,
            session_from_database=from_db,
            bundle_ids=bundle_ids,
            combo_ids=combo_ids,
            sfdc_cases=cases,
            bundle_paths=paths,
            cvm_ips=cvm_ips or [private_ip(rng)],
            rng=_rng_for(seed, index, "payloads"),
        )


class RequestSpec(NamedTuple):
    """One request to send: ``name`` is the stable row in Locust's statistics.

    A named tuple rather than a frozen dataclass: one is built per request, and a tuple is
    built about three times faster.
    """

    method: str
    url: str  #: path with its query string
    name: str
    json: dict[str, Any] | None = None


class PayloadGenerator:
    """Builds each endpoint's request from a user's pool; paths come from the settings.

    The builders run once per request, so they draw inline with ``rand = pool.rng.random``
    (``seq[int(rand() * len(seq))]`` is ``rng.choice(seq)``, see ``_pick``): in a busy Locust
    process each Python-level call saved is a measurable share of the request's cost.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = {key: settings.endpoint_path(key) for key in ENDPOINTS_BY_KEY}
        #: settings key -> bound builder: ``build`` runs once per request, without ``getattr``
        self._builders: dict[str, Callable[[UserPool], RequestSpec]] = {
            key: getattr(self, key.lower()) for key in ENDPOINTS_BY_KEY
        }
        before, _, after = self.paths["BUNDLE_PATHS_BY_CASE"].partition("{sfdc_case_no}")
        self._case_url = (before, after)

    # --- shared pieces --------------------------------------------------------------------
    @staticmethod
    def _bundle_ids(pool: UserPool, most: int = MAX_BUNDLE_IDS) -> list[int]:
        """1 to ``most`` distinct ids of the user's bundles, ascending."""
        ids, rand = pool.bundle_ids, pool.rng.random
        n = len(ids)
        k = 1 + int(rand() * (most if most < n else n))
        picked = {int(rand() * n)}
        while len(picked) < k:
            picked.add(int(rand() * n))
        return sorted([ids[i] for i in picked])

    @staticmethod
    def _start_hour(rand: Callable[[], float]) -> int:
        """Hours after ``EPOCH`` of a window's start: a random hour of a random day."""
        return int(rand() * SPAN_DAYS) * 24 + int(rand() * 24)

    @classmethod
    def _time_window(cls, pool: UserPool) -> tuple[str, str]:
        rand = pool.rng.random
        start = int(rand() * SPAN_DAYS) * 24 + int(rand() * 24)
        return _HOUR_STAMPS[start], _HOUR_STAMPS[start + _WINDOW_HOURS[int(rand() * 5)]]

    def _filters(self, pool: UserPool) -> dict[str, Any]:
        """A realistic, sparse filter set: most searches use one to three filters."""
        rand = pool.rng.random
        filters: dict[str, Any] = {}
        if rand() < 0.5:
            filters["components"] = _sample(rand, COMPONENTS, 1 + int(rand() * 3))
        if rand() < 0.6:
            filters["log_levels"] = _sample(rand, _FILTER_LEVELS, 1 + int(rand() * 2))
        if rand() < 0.3:
            filters["cvm_ips"] = _sample(rand, pool.cvm_ips, 2)
        if rand() < 0.4:
            filters["start_time"], filters["end_time"] = self._time_window(pool)
        if rand() < 0.4:
            filters["search_log_string"] = SEARCH_STRINGS[int(rand() * len(SEARCH_STRINGS))]
        if rand() < 0.2:
            filters["is_curated"] = rand() < 0.5
        return filters

    def _post(self, key: str, body: dict[str, Any]) -> RequestSpec:
        path = self.paths[key]
        return RequestSpec("POST", path, path, body)

    def _post_filtered(self, key: str, pool: UserPool, body: dict[str, Any]) -> RequestSpec:
        """A POST whose body gets a filter set 70% of the time."""
        if pool.rng.random() < 0.7:
            body["filters"] = self._filters(pool)
        path = self.paths[key]
        return RequestSpec("POST", path, path, body)

    # --- one builder per endpoint, named for the settings key -----------------------------
    def logs_analyze(self, pool: UserPool) -> RequestSpec:
        rand, paths, cases = pool.rng.random, pool.bundle_paths, pool.sfdc_cases
        body = {
            "remote_log_bundle_path": paths[int(rand() * len(paths))],
            "sfdc_case_no": cases[int(rand() * len(cases))],
            "is_retry": rand() < 0.1,
        }
        path = self.paths["LOGS_ANALYZE"]
        return RequestSpec("POST", path, path, body)

    def logs_info(self, pool: UserPool) -> RequestSpec:
        ids, path = pool.bundle_ids, self.paths["LOGS_INFO"]
        bundle_id = ids[int(pool.rng.random() * len(ids))]
        return RequestSpec("GET", f"{path}?bundle_id={bundle_id}", path)

    def logs_severity_count(self, pool: UserPool) -> RequestSpec:
        body = {"bundle_ids": self._bundle_ids(pool)}
        return self._post_filtered("LOGS_SEVERITY_COUNT", pool, body)

    def logs_histogram(self, pool: UserPool) -> RequestSpec:
        n = len(HISTOGRAM_INTERVALS)
        body = {"bundle_ids": self._bundle_ids(pool),
                "interval": HISTOGRAM_INTERVALS[int(pool.rng.random() * n)]}  # fmt: skip
        return self._post_filtered("LOGS_HISTOGRAM", pool, body)

    def logs_heatmap(self, pool: UserPool) -> RequestSpec:
        n = len(HEATMAP_GROUP_BY)
        body = {"bundle_ids": self._bundle_ids(pool),
                "group_by": HEATMAP_GROUP_BY[int(pool.rng.random() * n)]}  # fmt: skip
        return self._post_filtered("LOGS_HEATMAP", pool, body)

    def logs_search(self, pool: UserPool) -> RequestSpec:
        rand = pool.rng.random
        body = {
            "bundle_ids": self._bundle_ids(pool, most=4),
            "page_size": _PAGE_SIZES[int(rand() * 5)],
            "page_no": _PAGE_NOS[int(rand() * 5)],
        }
        return self._post_filtered("LOGS_SEARCH", pool, body)

    def logs_filter_options(self, pool: UserPool) -> RequestSpec:
        path = self.paths["LOGS_FILTER_OPTIONS"]
        query = "&".join([f"bundle_ids={b}" for b in self._bundle_ids(pool, most=5)])
        return RequestSpec("GET", f"{path}?{query}", path)

    def events(self, pool: UserPool) -> RequestSpec:
        rand, path = pool.rng.random, self.paths["EVENTS"]
        if rand() < 0.3:
            ids = pool.combo_ids
            return RequestSpec("GET", f"{path}?combo_id={ids[int(rand() * len(ids))]}", path)
        ids = pool.bundle_ids
        return RequestSpec("GET", f"{path}?bundle_id={ids[int(rand() * len(ids))]}", path)

    def ai_report_summary(self, pool: UserPool) -> RequestSpec:
        ids, path = pool.bundle_ids, self.paths["AI_REPORT_SUMMARY"]
        bundle_id = ids[int(pool.rng.random() * len(ids))]
        return RequestSpec("GET", f"{path}?bundle_id={bundle_id}", path)

    def ai_ask_ai(self, pool: UserPool) -> RequestSpec:
        rand = pool.rng.random
        question = _pick(rand, QUESTIONS).format(
            component=_pick(rand, COMPONENTS), ip=_pick(rand, pool.cvm_ips),
            level=_pick(rand, _FILTER_LEVELS), time=_HOUR_STAMPS[self._start_hour(rand)],
        )  # fmt: skip
        return self._post("AI_ASK_AI", {"bundle_id": _pick(rand, pool.bundle_ids),
                                        "question": question})  # fmt: skip

    def reports(self, pool: UserPool) -> RequestSpec:
        rand = pool.rng.random
        body: dict[str, Any] = {"page_no": _REPORT_PAGE_NOS[int(rand() * 3)],
                                "page_size": _REPORT_PAGE_SIZES[int(rand() * 3)]}  # fmt: skip
        filters: dict[str, Any] = {}
        if rand() < 0.4:
            filters["sfdc_case_no"] = _pick(rand, pool.sfdc_cases)
        if rand() < 0.3:
            filters["bundle_ids"] = self._bundle_ids(pool, most=5)
        if rand() < 0.4:
            filters["status"] = _sample(rand, BUNDLE_STATUSES, 1 + int(rand() * 2))
        if rand() < 0.3:
            filters["start_time"], filters["end_time"] = self._time_window(pool)
        if filters:
            body["filters"] = filters
        if rand() < 0.6:
            body["sort_by"] = REPORT_SORT_BY[int(rand() * len(REPORT_SORT_BY))]
            body["sort_order"] = SORT_ORDERS[int(rand() * len(SORT_ORDERS))]
        return self._post("REPORTS", body)

    def bundle_paths_by_case(self, pool: UserPool) -> RequestSpec:
        before, after = self._case_url
        cases = pool.sfdc_cases
        case = cases[int(pool.rng.random() * len(cases))]
        return RequestSpec("GET", f"{before}{case}{after}", self.paths["BUNDLE_PATHS_BY_CASE"])

    def build(self, key: str, pool: UserPool) -> RequestSpec:
        """The request for endpoint ``key`` (a settings key such as ``LOGS_SEARCH``)."""
        builder = self._builders.get(key)
        if builder is None:  # a builder added by a subclass for a key of its own
            builder = getattr(self, key.lower())
        spec: RequestSpec = builder(pool)
        return spec
