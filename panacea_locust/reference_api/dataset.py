"""The reference server's deterministic data set: bundles, combos and SFDC cases as plain records.

``build_dataset(seed, ...)`` makes the records from a seed alone; ``Dataset.from_records`` takes
records loaded from elsewhere (e.g. ClickHouse) so the server can answer for ids a real system
holds. Either way, the log lines and events of a bundle are derived lazily from
(seed, bundle id) and cached, so building a data set for any id range is cheap.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from random import Random

import orjson

from panacea_locust.contract import BUNDLE_STATUSES

from .synth import BundleLogs, iso

UTC = timezone.utc
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
#: bundle b belongs to case DEFAULT_CASE_BASE + b (the load side's SFDC_CASE_BASE default)
DEFAULT_CASE_BASE = 12_340_000
_PATH_IP = re.compile(r"-PE-(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\.zip$")
_FIRST = (
    "john",
    "jane",
    "alex",
    "maria",
    "wei",
    "priya",
    "omar",
    "sara",
    "li",
    "david",
    "anna",
    "raj",
    "chen",
    "lucas",
    "emma",
    "yuki",
    "ivan",
    "fatima",
    "noah",
    "olga",
)
_LAST = (
    "doe",
    "smith",
    "kumar",
    "garcia",
    "wang",
    "mueller",
    "rossi",
    "tanaka",
    "ivanova",
    "nguyen",
    "patel",
    "kim",
    "silva",
    "brown",
    "novak",
    "haddad",
    "sato",
    "lopez",
)


@dataclass(frozen=True, slots=True)
class BundleRecord:
    """One row of ``log_bundles``; ``created_at`` is timezone-aware UTC."""

    bundle_id: int
    sfdc_case_no: str
    remote_log_bundle_path: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ComboRecord:
    """One row of ``combo_bundles``: a saved group of known bundles."""

    combo_id: int
    bundle_ids: list[int]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SfdcCaseRecord:
    """One row of ``sfdc_cases``."""

    sfdc_case_no: str
    created_at: datetime


def _ts(dt: datetime) -> int:
    if dt.tzinfo is None:  # naive datetimes (e.g. from ClickHouse) are taken as UTC
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


class Dataset:
    """Known bundles, combos and cases, with the indexes the handlers need.

    Anything not in the records is unknown to the server (404).
    """

    def __init__(
        self,
        seed: int,
        bundles: Iterable[BundleRecord],
        combos: Iterable[ComboRecord],
        sfdc_cases: Iterable[SfdcCaseRecord],
    ) -> None:
        self.seed = seed
        self.bundles: list[BundleRecord] = sorted(bundles, key=lambda b: b.bundle_id)
        self.combos: list[ComboRecord] = sorted(combos, key=lambda c: c.combo_id)
        self.sfdc_cases: list[SfdcCaseRecord] = sorted(sfdc_cases, key=lambda c: c.sfdc_case_no)
        self.bundle_by_id: dict[int, BundleRecord] = {b.bundle_id: b for b in self.bundles}
        self.combo_by_id: dict[int, ComboRecord] = {c.combo_id: c for c in self.combos}
        self.max_bundle_id = max(self.bundle_by_id, default=0)
        by_case: dict[str, list[BundleRecord]] = {c.sfdc_case_no: [] for c in self.sfdc_cases}
        for b in self.bundles:
            by_case.setdefault(b.sfdc_case_no, []).append(b)
        for lst in by_case.values():
            lst.sort(key=lambda b: (b.created_at, b.bundle_id))
        self.bundles_by_case = by_case
        self.by_path: dict[tuple[str, str], BundleRecord] = {
            (b.remote_log_bundle_path, b.sfdc_case_no): b for b in self.bundles
        }
        self.created_ts: dict[int, int] = {b.bundle_id: _ts(b.created_at) for b in self.bundles}
        #: reports pre-serialised once; the reports endpoint only selects and joins them
        self.report_json: dict[int, bytes] = {
            b.bundle_id: orjson.dumps(
                {
                    "bundle_id": b.bundle_id,
                    "sfdc_case_no": b.sfdc_case_no,
                    "remote_log_bundle_path": b.remote_log_bundle_path,
                    "status": b.status,
                    "created_at": iso(self.created_ts[b.bundle_id]),
                }
            )
            for b in self.bundles
        }
        self.by_created: list[BundleRecord] = sorted(
            self.bundles, key=lambda b: (self.created_ts[b.bundle_id], b.bundle_id)
        )
        self.paths_json: dict[str, bytes] = {
            case: orjson.dumps(
                {"sfdc_case_no": case, "paths": [b.remote_log_bundle_path for b in lst]}
            )
            for case, lst in by_case.items()
        }
        self._logs: dict[int, BundleLogs] = {}
        self._combo_events: dict[int, bytes] = {}
        self._by_status: dict[frozenset[str] | None, tuple[list[BundleRecord], list[int]]] = {}

    def reports_by_created(
        self, statuses: frozenset[str] | None
    ) -> tuple[list[BundleRecord], list[int]]:
        """Bundles with one of ``statuses`` (all if None) by (created_at, id), and their times."""
        found = self._by_status.get(statuses)
        if found is None:
            recs = [b for b in self.by_created if statuses is None or b.status in statuses]
            found = (recs, [self.created_ts[b.bundle_id] for b in recs])
            self._by_status[statuses] = found
        return found

    @classmethod
    def from_records(
        cls,
        seed: int,
        bundles: Iterable[BundleRecord],
        combos: Iterable[ComboRecord],
        sfdc_cases: Iterable[SfdcCaseRecord],
    ) -> Dataset:
        """A data set that knows exactly these records (e.g. loaded from ClickHouse)."""
        return cls(seed, bundles, combos, sfdc_cases)

    def logs(self, bundle_id: int) -> BundleLogs:
        """The lines and events of a known bundle, generated on first use and then cached."""
        found = self._logs.get(bundle_id)
        if found is None:
            rec = self.bundle_by_id[bundle_id]
            m = _PATH_IP.search(rec.remote_log_bundle_path)
            path_ip = m.group(1) if m else None
            if path_ip is not None and not _private(path_ip):
                path_ip = None
            found = BundleLogs(self.seed, bundle_id, self.created_ts[bundle_id], path_ip)
            self._logs[bundle_id] = found
        return found

    def combo_events_json(self, combo_id: int) -> bytes:
        """Events of all bundles of a combo, by time; serialised once."""
        found = self._combo_events.get(combo_id)
        if found is None:
            events = []
            for bid in self.combo_by_id[combo_id].bundle_ids:
                if bid in self.bundle_by_id:
                    events.extend(self.logs(bid).events)
            events.sort(key=lambda e: e["timestamp"])
            found = orjson.dumps({"total": len(events), "events": events})
            self._combo_events[combo_id] = found
        return found

    def new_bundle_id(self, path: str, case: str) -> int:
        """Id for an analysis of a path the data set does not hold: above every known id and
        stable for the same (seed, path, case), so answers stay deterministic."""
        h = zlib.crc32(f"{self.seed}|{path}|{case}".encode())
        return self.max_bundle_id + 1 + h % 1_000_000


def _private(ip: str) -> bool:
    from .models import is_private_ipv4

    return is_private_ipv4(ip)


def _cluster(seed: int, cluster: int, start_ts: int, days: int) -> tuple[str, int, str, int]:
    """(user, serial, first CVM IP, time) shared by the bundles of one cluster of ids."""
    rng = Random(f"panacea-cluster:{seed}:{cluster}")
    user = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}"
    serial = rng.randint(10000, 99999)
    kind = rng.randrange(3)
    if kind == 0:
        net = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
    elif kind == 1:
        net = f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}"
    else:
        net = f"192.168.{rng.randint(0, 255)}"
    return user, serial, f"{net}.{rng.randint(10, 200)}", start_ts + rng.randint(0, days * 86400)


def build_dataset(
    seed: int = 42,
    bundle_min: int = 800,
    bundle_max: int = 1000,
    unknown_ratio: float = 0.05,
    combo_min: int = 1,
    combo_max: int = 200,
    combo_unknown_ratio: float | None = None,
    start: datetime = DEFAULT_START,
    days: int = 180,
    sfdc_case_base: int = DEFAULT_CASE_BASE,
) -> Dataset:
    """The synthetic data set for ``seed``.

    Each id's record is drawn from (seed, id) alone, so a bundle is the same whatever range is
    built. About ``unknown_ratio`` of the bundle ids ``bundle_min..bundle_max`` and of the combo
    ids ``combo_min..combo_max`` are unknown (so a load test meets 404s naturally). Bundle ``b``
    belongs to SFDC case ``sfdc_case_base + b`` (9 digits), the rule the load side's generated
    pools use. Ids ``3k..3k+2`` come from one cluster (same user, serial and CVM subnet); most
    bundles are ``completed``; creation times fall within ``days`` days after ``start``; each
    combo groups 2 to 6 nearby known bundles.
    """
    if bundle_min < 1 or bundle_max < bundle_min:
        raise ValueError("need 1 <= bundle_min <= bundle_max")
    if combo_min < 1 or combo_max < combo_min:
        raise ValueError("need 1 <= combo_min <= combo_max")
    if not 0 <= unknown_ratio < 1:
        raise ValueError("unknown_ratio must be in [0, 1)")
    if sfdc_case_base < 0 or sfdc_case_base + bundle_max > 999_999_999:
        raise ValueError("sfdc_case_base + bundle_max must stay within 9 digits")
    c_ratio = unknown_ratio if combo_unknown_ratio is None else combo_unknown_ratio
    if not 0 <= c_ratio < 1:
        raise ValueError("combo_unknown_ratio must be in [0, 1)")
    start_ts = _ts(start)
    bundles: list[BundleRecord] = []
    cases: list[SfdcCaseRecord] = []
    clusters: dict[int, tuple[str, int, str, int]] = {}
    for bid in range(bundle_min, bundle_max + 1):
        rng = Random(f"panacea-bundle:{seed}:{bid}")
        if rng.random() < unknown_ratio:
            continue
        key = bid // 3
        if key not in clusters:
            clusters[key] = _cluster(seed, key, start_ts, days)
        user, serial, ip, cluster_ts = clusters[key]
        case = f"{sfdc_case_base + bid:09d}"
        case_ts = cluster_ts + rng.randint(0, 72 * 3600)
        cases.append(SfdcCaseRecord(case, datetime.fromtimestamp(case_ts, UTC)))
        created = case_ts + rng.randint(3600, 48 * 3600)
        day = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d")
        path = f"/users/{user}/NTNX-Log-{day}-{serial}-{created}-PE-{ip}.zip"
        r = rng.random()
        status = (
            BUNDLE_STATUSES[0]
            if r < 0.04
            else BUNDLE_STATUSES[1]
            if r < 0.09
            else BUNDLE_STATUSES[2]
        )
        bundles.append(BundleRecord(bid, case, path, status, datetime.fromtimestamp(created, UTC)))

    known = [b.bundle_id for b in bundles]
    created_of = {b.bundle_id: _ts(b.created_at) for b in bundles}
    combos: list[ComboRecord] = []
    for cid in range(combo_min, combo_max + 1):
        rng = Random(f"panacea-combo:{seed}:{cid}")
        if rng.random() < c_ratio or not known:
            continue
        centre = rng.randrange(len(known))
        window = known[max(0, centre - 10) : centre + 10]
        members = sorted(rng.sample(window, min(rng.randint(2, 6), len(window))))
        newest = max(created_of[b] for b in members)
        combos.append(
            ComboRecord(cid, members, datetime.fromtimestamp(newest + rng.randint(600, 86400), UTC))
        )
    return Dataset(seed, bundles, combos, cases)
