"""Per-user data pools (SPEC's distribution rules) and one payload builder per endpoint.

Pure logic: no Locust and no network imports, so the rules are unit tested directly. Each
virtual user owns a :class:`UserPool` built from its global index ``g``; every id a payload
names comes from that pool. With a seed, pools and the sequence of payloads are reproducible.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from panacea_locust.config import ENDPOINTS_BY_KEY, Settings

LOG_LEVELS = ("fatal", "error", "warn", "info", "debug")
COMPONENTS = (
    "acropolis", "stargate", "cassandra", "curator", "cerebro", "zookeeper", "prism", "genesis",
    "hades", "uhura", "ergon", "lazan", "arithmos", "pithos", "insights_server", "alert_manager",
    "chronos", "mercury",
)  # fmt: skip
HISTOGRAM_INTERVALS = ("1m", "5m", "15m", "1h")
HEATMAP_GROUPS = ("component", "cvm_ip", "log_level")
REPORT_STATUSES = ("queued", "processing", "completed")
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


def sfdc_case_for_bundle(bundle_id: int, base: int) -> str:
    """The case a generated bundle belongs to: the reference API uses the same rule."""
    return f"{base + bundle_id:09d}"


def _rng_for(seed: int | None, index: int, purpose: str) -> random.Random:
    if seed is None:
        return random.Random()
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


@dataclass
class UserPool:
    """Everything one virtual user draws from; built once, when the user starts."""

    index: int
    user_id: str
    session_id: str
    session_from_database: bool
    bundle_ids: list[int]
    combo_ids: list[int]
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
        bundle_ids = window(index, bundles, settings.bundle_id_range_per_user, overlap)
        combos = data.combo_ids or range(settings.combo_id_min, settings.combo_id_max + 1)
        combo_ids = window(index, combos, settings.combo_id_range_per_user, overlap)

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


@dataclass(frozen=True)
class RequestSpec:
    """One request to send: ``name`` is the stable row in Locust's statistics."""

    method: str
    url: str  #: path with its query string
    name: str
    json: dict[str, Any] | None = None


class PayloadGenerator:
    """Builds each endpoint's request from a user's pool; paths come from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = {key: settings.endpoint_path(key) for key in ENDPOINTS_BY_KEY}

    # --- shared pieces --------------------------------------------------------------------
    @staticmethod
    def _bundle_ids(pool: UserPool, most: int = 10) -> list[int]:
        k = pool.rng.randint(1, min(most, len(pool.bundle_ids)))
        return sorted(pool.rng.sample(pool.bundle_ids, k))

    @staticmethod
    def _time_window(pool: UserPool) -> tuple[str, str]:
        rng = pool.rng
        start = EPOCH + timedelta(days=rng.randrange(SPAN_DAYS), hours=rng.randrange(24))
        return iso(start), iso(start + timedelta(hours=rng.choice((1, 2, 6, 12, 24))))

    def _filters(self, pool: UserPool) -> dict[str, Any]:
        """A realistic, sparse filter set: most searches use one to three filters."""
        rng = pool.rng
        filters: dict[str, Any] = {}
        if rng.random() < 0.5:
            filters["components"] = rng.sample(COMPONENTS, rng.randint(1, 3))
        if rng.random() < 0.6:
            filters["log_levels"] = rng.sample(LOG_LEVELS[:3], rng.randint(1, 2))
        if rng.random() < 0.3:
            filters["cvm_ips"] = rng.sample(pool.cvm_ips, min(len(pool.cvm_ips), 2))
        if rng.random() < 0.4:
            filters["start_time"], filters["end_time"] = self._time_window(pool)
        if rng.random() < 0.4:
            filters["search_log_string"] = rng.choice(SEARCH_STRINGS)
        if rng.random() < 0.2:
            filters["is_curated"] = rng.random() < 0.5
        return filters

    def _with_filters(self, pool: UserPool, body: dict[str, Any]) -> dict[str, Any]:
        if pool.rng.random() < 0.7:
            body["filters"] = self._filters(pool)
        return body

    def _post(self, key: str, body: dict[str, Any]) -> RequestSpec:
        path = self.paths[key]
        return RequestSpec("POST", path, path, body)

    def _get(self, key: str, query: list[tuple[str, Any]]) -> RequestSpec:
        path = self.paths[key]
        return RequestSpec("GET", f"{path}?{urlencode(query)}", path)

    # --- one builder per endpoint, named for the settings key -----------------------------
    def logs_analyze(self, pool: UserPool) -> RequestSpec:
        body = {
            "remote_log_bundle_path": pool.rng.choice(pool.bundle_paths),
            "sfdc_case_no": pool.rng.choice(pool.sfdc_cases),
            "is_retry": pool.rng.random() < 0.1,
        }
        return self._post("LOGS_ANALYZE", body)

    def logs_info(self, pool: UserPool) -> RequestSpec:
        return self._get("LOGS_INFO", [("bundle_id", pool.rng.choice(pool.bundle_ids))])

    def logs_severity_count(self, pool: UserPool) -> RequestSpec:
        body = self._with_filters(pool, {"bundle_ids": self._bundle_ids(pool)})
        return self._post("LOGS_SEVERITY_COUNT", body)

    def logs_histogram(self, pool: UserPool) -> RequestSpec:
        body = {"bundle_ids": self._bundle_ids(pool),
                "interval": pool.rng.choice(HISTOGRAM_INTERVALS)}  # fmt: skip
        return self._post("LOGS_HISTOGRAM", self._with_filters(pool, body))

    def logs_heatmap(self, pool: UserPool) -> RequestSpec:
        body = {"bundle_ids": self._bundle_ids(pool), "group_by": pool.rng.choice(HEATMAP_GROUPS)}
        return self._post("LOGS_HEATMAP", self._with_filters(pool, body))

    def logs_search(self, pool: UserPool) -> RequestSpec:
        rng = pool.rng
        body = {
            "bundle_ids": self._bundle_ids(pool, most=4),
            "page_size": rng.choice((10, 20, 20, 50, 100)),
            "page_no": rng.choice((1, 1, 1, 2, 3)),
        }
        return self._post("LOGS_SEARCH", self._with_filters(pool, body))

    def logs_filter_options(self, pool: UserPool) -> RequestSpec:
        ids = self._bundle_ids(pool, most=5)
        return self._get("LOGS_FILTER_OPTIONS", [("bundle_ids", b) for b in ids])

    def events(self, pool: UserPool) -> RequestSpec:
        if pool.rng.random() < 0.3:
            return self._get("EVENTS", [("combo_id", pool.rng.choice(pool.combo_ids))])
        return self._get("EVENTS", [("bundle_id", pool.rng.choice(pool.bundle_ids))])

    def ai_report_summary(self, pool: UserPool) -> RequestSpec:
        return self._get("AI_REPORT_SUMMARY", [("bundle_id", pool.rng.choice(pool.bundle_ids))])

    def ai_ask_ai(self, pool: UserPool) -> RequestSpec:
        rng = pool.rng
        start, _ = self._time_window(pool)
        question = rng.choice(QUESTIONS).format(
            component=rng.choice(COMPONENTS), ip=rng.choice(pool.cvm_ips),
            level=rng.choice(LOG_LEVELS[:3]), time=start,
        )  # fmt: skip
        return self._post("AI_ASK_AI", {"bundle_id": rng.choice(pool.bundle_ids),
                                        "question": question})  # fmt: skip

    def reports(self, pool: UserPool) -> RequestSpec:
        rng = pool.rng
        body: dict[str, Any] = {"page_no": rng.choice((1, 1, 2)),
                                "page_size": rng.choice((10, 20, 50))}  # fmt: skip
        filters: dict[str, Any] = {}
        if rng.random() < 0.4:
            filters["sfdc_case_no"] = rng.choice(pool.sfdc_cases)
        if rng.random() < 0.3:
            filters["bundle_ids"] = self._bundle_ids(pool, most=5)
        if rng.random() < 0.4:
            filters["status"] = rng.sample(REPORT_STATUSES, rng.randint(1, 2))
        if rng.random() < 0.3:
            filters["start_time"], filters["end_time"] = self._time_window(pool)
        if filters:
            body["filters"] = filters
        if rng.random() < 0.6:
            body["sort_by"] = rng.choice(("created_at", "bundle_id"))
            body["sort_order"] = rng.choice(("asc", "desc"))
        return self._post("REPORTS", body)

    def bundle_paths_by_case(self, pool: UserPool) -> RequestSpec:
        template = self.paths["BUNDLE_PATHS_BY_CASE"]
        url = template.replace("{sfdc_case_no}", pool.rng.choice(pool.sfdc_cases))
        return RequestSpec("GET", url, template)

    def build(self, key: str, pool: UserPool) -> RequestSpec:
        """The request for endpoint ``key`` (a settings key such as ``LOGS_SEARCH``)."""
        builder: Any = getattr(self, key.lower())
        spec: RequestSpec = builder(pool)
        return spec
