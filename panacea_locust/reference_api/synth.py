"""Synthetic log lines and events of one bundle, derived from (seed, bundle id) alone.

A bundle's lines are held column-wise, sorted by time, with one Python ``int`` bit mask per
component, level and CVM IP (bit ``i`` = line ``i``). A filter is then a few big-int ANDs and a
count is ``int.bit_count()``: answers stay real (computed from the lines) yet cost microseconds,
which is what lets the server meet its 5,000 req/s target with no constant bodies.
"""

from __future__ import annotations

import heapq
import string
import time
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from itertools import accumulate
from random import Random
from typing import TYPE_CHECKING, Any

import orjson

from panacea_locust.contract import COMPONENTS, LOG_LEVELS

if TYPE_CHECKING:
    from .models import LogFilters

_LEVEL_INDEX = {lvl: i for i, lvl in enumerate(LOG_LEVELS)}

# (component or None for any, level, template, curated)
_TEMPLATES: tuple[tuple[str | None, str, str, bool], ...] = (
    ("cassandra", "fatal", "Cassandra process crashed: heap exhausted after {sec} s of GC", True),
    (
        "cassandra",
        "error",
        "Cassandra heartbeat from {peer} missed for {sec} s, node degraded",
        True,
    ),
    ("cassandra", "warn", "Cassandra compaction of keyspace medusa running for {sec} s", False),
    ("cassandra", "warn", "Cassandra node {peer} degraded: read latency {ms} ms", True),
    ("cassandra", "info", "Cassandra ring status: {n} tokens owned by {ip}", False),
    ("cassandra", "debug", "Cassandra read repair of key range {op} finished in {ms} ms", False),
    ("stargate", "fatal", "Stargate exiting: oplog store corrupted on disk {disk}", True),
    ("stargate", "error", "Stargate write to vdisk {vdisk} failed with {code} after {ms} ms", True),
    ("stargate", "warn", "Stargate oplog of vdisk {vdisk} is {pct}% full", False),
    ("stargate", "info", "Stargate served {n} IOPS on vdisk {vdisk}", False),
    ("stargate", "debug", "Stargate extent group {op} replicated to {peer}", False),
    (
        "stargate",
        "error",
        "Stargate checksum mismatch on extent group {op}, replica on {peer}",
        True,
    ),
    ("stargate", "fatal", "Stargate disk full: no space left on disk {disk}", True),
    ("curator", "error", "Curator scan {op} aborted: {code}", True),
    ("curator", "warn", "Curator full scan took {sec} s, above threshold", False),
    ("curator", "info", "Curator partial scan {op} completed, reclaimed {gb} GB", False),
    ("acropolis", "error", "Acropolis failed to power on VM {vm}: {code}", True),
    ("acropolis", "warn", "Acropolis host {node} entered maintenance mode", False),
    ("acropolis", "info", "Acropolis migrated VM {vm} to {peer} in {ms} ms", False),
    ("zookeeper", "fatal", "Zookeeper quorum lost: {peer} unreachable", True),
    ("zookeeper", "error", "Zookeeper session {uuid} expired", True),
    ("zookeeper", "info", "Zookeeper leader is {ip}", False),
    ("zookeeper", "warn", "Zookeeper leader election started after {peer} left", True),
    ("prism", "error", "Prism gateway request {op} returned HTTP 500 after {ms} ms", False),
    ("prism", "info", "Prism user login from {peer}", False),
    ("genesis", "error", "Genesis failed to start service {svc}, retry {n}", True),
    ("genesis", "info", "Genesis started service {svc} on {ip}", False),
    (
        "cerebro",
        "error",
        "Cerebro replication of snapshot {uuid} to remote site failed: {code}",
        True,
    ),
    ("cerebro", "info", "Cerebro created snapshot {uuid} for protection domain pd-{n}", False),
    ("hades", "error", "Hades marked disk {disk} offline after SMART failure", True),
    ("hades", "warn", "Hades disk {disk} reports {n} reallocated sectors", False),
    ("uhura", "warn", "Uhura vCenter connection slow: {ms} ms", False),
    ("uhura", "info", "Uhura synced {n} VM records", False),
    ("ergon", "error", "Ergon task {uuid} failed: {code}", True),
    ("ergon", "info", "Ergon task {uuid} completed", False),
    ("lazan", "warn", "Lazan sees host {node} CPU at {pct}%", False),
    ("lazan", "info", "Lazan computed a placement plan for {n} VMs", False),
    ("arithmos", "warn", "Arithmos stats lag is {sec} s", False),
    ("arithmos", "info", "Arithmos flushed stats of {n} entities in {ms} ms", False),
    ("pithos", "error", "Pithos update of vdisk config {vdisk} hit a CAS conflict", False),
    ("pithos", "info", "Pithos looked up vdisk {vdisk} in {ms} ms", False),
    ("insights_server", "warn", "insights_server entity cache miss rate {pct}%", False),
    ("insights_server", "info", "insights_server registered watch {op}", False),
    ("alert_manager", "error", "alert_manager raised alert A{n}: {svc} down on {ip}", True),
    ("alert_manager", "info", "alert_manager resolved alert A{n}", False),
    ("chronos", "error", "Chronos job {op} failed after {sec} s", False),
    ("chronos", "info", "Chronos scheduled job {op}", False),
    ("mercury", "warn", "Mercury RPC to {peer} timed out after {ms} ms", False),
    ("mercury", "info", "Mercury connection pool size is {n}", False),
    (None, "fatal", "FATAL check failed in {svc}, process exiting (core dumped)", True),
    (None, "error", "RPC to {peer} failed with {code}", False),
    (None, "error", "RPC failed: {svc} on {peer} returned {code}", False),
    (None, "fatal", "OOM: {svc} killed by the kernel after using {gb} MB", True),
    (None, "error", "Out of memory: thread {op} of {svc} killed", True),
    (None, "warn", "Slow operation {op} took {ms} ms", False),
    (None, "warn", "Clock skew of {ms} ms against {peer}", False),
    (None, "info", "Heartbeat from {peer} ok", False),
    (None, "info", "Applied configuration version {n}", False),
    (None, "debug", "Polling {peer} for state, attempt {n}", False),
    (None, "debug", "Cache hit ratio {pct}%", False),
)
_TEMPLATE_FIELDS: tuple[tuple[str, ...], ...] = tuple(
    tuple(f for _, f, _, _ in string.Formatter().parse(t[2]) if f) for t in _TEMPLATES
)
#: (component index, level index) -> candidate template indexes
_CANDIDATES: dict[tuple[int, int], tuple[int, ...]] = {}
for _ci, _comp in enumerate(COMPONENTS):
    for _li, _lvl in enumerate(LOG_LEVELS):
        own = tuple(i for i, t in enumerate(_TEMPLATES) if t[0] == _comp and t[1] == _lvl)
        generic = tuple(i for i, t in enumerate(_TEMPLATES) if t[0] is None and t[1] == _lvl)
        _CANDIDATES[(_ci, _li)] = own * 3 + generic if own else generic

_CURATED: tuple[bool, ...] = tuple(t[3] for t in _TEMPLATES)
_CODES = ("kTimeout", "kRetry", "kNotFound", "kTransportError", "kDiskSpaceUnavailable")
_COMPONENT_WEIGHTS = {
    "stargate": 8,
    "cassandra": 7,
    "curator": 5,
    "acropolis": 5,
    "zookeeper": 4,
    "genesis": 4,
    "prism": 3,
    "cerebro": 3,
}
_CORE = ("stargate", "cassandra", "curator", "acropolis", "zookeeper", "genesis", "prism")
_LEVEL_WEIGHTS_NORMAL = (0.5, 5.0, 12.0, 50.0, 32.5)
_LEVEL_WEIGHTS_BURST = (5.0, 40.0, 35.0, 15.0, 5.0)

_EVENT_KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("service_restart", "warning", "genesis", "Service {svc} restarted on CVM {ip}"),
    ("node_reboot", "critical", "genesis", "CVM {ip} rebooted unexpectedly"),
    ("disk_offline", "critical", "hades", "Disk {disk} on CVM {ip} marked offline"),
    (
        "alert_raised",
        "warning",
        "alert_manager",
        "Alert A{n} raised: {svc} latency above threshold",
    ),
    ("alert_resolved", "info", "alert_manager", "Alert A{n} resolved"),
    ("upgrade_started", "info", "genesis", "AOS upgrade to 6.{n} started"),
    ("upgrade_completed", "info", "genesis", "AOS upgrade completed on CVM {ip}"),
    ("ha_failover", "critical", "acropolis", "HA failover: VMs restarted away from host {node}"),
    ("snapshot_failed", "warning", "cerebro", "Snapshot of protection domain pd-{n} failed"),
    ("config_change", "info", "prism", "Cluster configuration changed by admin from {peer}"),
    ("network_partition", "critical", "zookeeper", "CVM {ip} lost {peer} for {sec} s"),
    ("storage_pressure", "warning", "curator", "Storage pool usage at {pct}%"),
)


@lru_cache(maxsize=65536)
def iso(ts: float) -> str:
    """``2024-01-15T10:00:00Z`` for an epoch time (whole seconds, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))


def ip_key(ip: str) -> tuple[int, ...]:
    return tuple(int(p) for p in ip.split("."))


def _bits_to_int(flags: Sequence[bool]) -> int:
    """An int whose bit ``i`` is ``flags[i]``."""
    if not flags:
        return 0
    return int("".join("1" if f else "0" for f in reversed(flags)), 2)


def _masks(values: Sequence[int]) -> dict[int, int]:
    """value -> mask of the positions holding it."""
    where: dict[int, list[int]] = {}
    for i, v in enumerate(values):
        where.setdefault(v, []).append(i)
    out = {}
    for v, idx in where.items():
        chars = ["0"] * len(values)
        for i in idx:
            chars[i] = "1"
        out[v] = int("".join(reversed(chars)), 2)
    return out


def iter_bits(mask: int, start: int = 0) -> Iterator[int]:
    """Indexes of the set bits of ``mask`` at or above ``start``, ascending."""
    bits = bin(mask)[:1:-1]
    find = bits.find
    i = find("1", start)
    while i >= 0:
        yield i
        i = find("1", i + 1)


class _Vars:
    """Random values for message templates, drawn only when a template names them."""

    def __init__(self, rng: Random, ips: Sequence[str], serial: str, components: Sequence[str]):
        rnd = rng.random

        def num(lo: int, hi: int) -> Callable[[], str]:
            span = hi - lo + 1
            return lambda: str(lo + int(rnd() * span))

        def pick(items: Sequence[str]) -> Callable[[], str]:
            k = len(items)
            return lambda: items[int(rnd() * k)]

        self.gen: dict[str, Callable[[], str]] = {
            "ip": pick(ips),
            "peer": pick(ips),
            "n": num(1, 5000),
            "ms": num(5, 30000),
            "sec": num(1, 600),
            "pct": num(70, 99),
            "gb": num(1, 2048),
            "vdisk": num(1000, 999999),
            "op": num(10000, 99999),
            "disk": lambda: f"BTHC{100000 + int(rnd() * 900000)}",
            "uuid": lambda: _uuid(rng),
            "vm": lambda: f"vm-{1 + int(rnd() * 300):03d}",
            "node": lambda: f"NTNX-{serial}-{'ABCD'[int(rnd() * 4)]}",
            "svc": pick(components),
            "code": pick(_CODES),
        }

    def fill(self, template: str, fields: tuple[str, ...]) -> str:
        gen = self.gen
        return template.format(**{f: gen[f]() for f in fields})


def _uuid(r: Random) -> str:
    h = f"{r.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class BundleLogs:
    """All log lines and events of one bundle, with the bit-mask indexes used to query them."""

    __slots__ = (
        "bundle_id",
        "cvm_ips",
        "components",
        "n",
        "ts",
        "comp",
        "lvl",
        "ip",
        "tmpl",
        "msg",
        "full",
        "comp_mask",
        "lvl_mask",
        "ip_mask",
        "curated",
        "events",
        "_lower",
        "_search",
        "_lines_json",
        "_hist",
        "_ranges",
        "_heat",
        "_pairs",
        "info_json",
        "events_json",
        "created_ts",
        "levels_present",
        "ip_keys",
    )

    def __init__(self, seed: int, bundle_id: int, created_ts: int, path_ip: str | None) -> None:
        rng = Random(f"panacea-logs:{seed}:{bundle_id}")
        self.bundle_id = bundle_id
        self.created_ts = created_ts
        self.cvm_ips: list[str] = _cvm_ips(rng, path_ip)
        serial = f"{rng.randint(10000, 99999)}"
        extra = [c for c in COMPONENTS if c not in _CORE]
        comps = sorted(set(_CORE) | set(rng.sample(extra, rng.randint(2, 7))))
        self.components: list[str] = comps
        comp_idx = [COMPONENTS.index(c) for c in comps]
        comp_w = [_COMPONENT_WEIGHTS.get(c, 1) for c in comps]
        n = rng.randint(300, 1200)
        end = created_ts - rng.randint(300, 3600)
        start = end - rng.randint(3600, 6 * 3600)
        bursts = [rng.randint(start, end) for _ in range(rng.randint(1, 3))]
        var = _Vars(rng, self.cvm_ips, serial, comps)
        rnd = rng.random
        comp_cum = list(accumulate(comp_w))
        normal_cum = list(accumulate(_LEVEL_WEIGHTS_NORMAL))
        burst_cum = list(accumulate(_LEVEL_WEIGHTS_BURST))
        n_ips, n_bursts, span = len(self.cvm_ips), len(bursts), end - start + 1
        rows: list[tuple[int, int, int, int, int, str]] = []
        for _ in range(n):
            if rnd() < 0.2:
                centre = bursts[int(rnd() * n_bursts)]
                t = min(end, max(start, int(rng.gauss(centre, 240))))
                li = bisect_right(burst_cum, rnd() * burst_cum[-1])
            else:
                t = start + int(rnd() * span)
                li = bisect_right(normal_cum, rnd() * normal_cum[-1])
            ci = comp_idx[bisect_right(comp_cum, rnd() * comp_cum[-1])]
            cands = _CANDIDATES[(ci, li)]
            ti = cands[int(rnd() * len(cands))]
            msg = var.fill(_TEMPLATES[ti][2], _TEMPLATE_FIELDS[ti])
            rows.append((t, ci, li, int(rnd() * n_ips), ti, msg))
        rows.sort(key=lambda r: r[0])
        self.n = n
        self.ts: list[int] = [r[0] for r in rows]
        self.comp: list[int] = [r[1] for r in rows]
        self.lvl: list[int] = [r[2] for r in rows]
        self.ip: list[int] = [r[3] for r in rows]
        self.tmpl: list[int] = [r[4] for r in rows]
        self.msg: list[str] = [r[5] for r in rows]
        self.full = (1 << n) - 1
        self.comp_mask = {COMPONENTS[c]: m for c, m in _masks(self.comp).items()}
        lvl_masks = _masks(self.lvl)
        self.lvl_mask = {lvl: lvl_masks.get(li, 0) for li, lvl in enumerate(LOG_LEVELS)}
        ip_masks = _masks(self.ip)
        self.ip_mask = {ip: ip_masks.get(k, 0) for k, ip in enumerate(self.cvm_ips)}
        self.curated = _bits_to_int(
            [_CURATED[t] or lv == 0 for t, lv in zip(self.tmpl, self.lvl, strict=True)]
        )
        self.events = _events(rng, start, end, self.cvm_ips, serial, comps)
        self.levels_present = frozenset(lvl for lvl, m in self.lvl_mask.items() if m)
        self.ip_keys = [(ip_key(ip), ip) for ip in self.cvm_ips]
        self._lower: list[str] | None = None
        self._search: dict[str, int] = {}
        self._lines_json: list[bytes] | None = None
        self._hist: dict[int, tuple[list[tuple[int, int]], bytes]] = {}
        self._ranges: dict[int, list[tuple[int, int, int]]] = {}
        self._heat: dict[str, list[int]] = {}
        self._pairs: dict[str, list[tuple[int, int]]] = {}
        self.info_json: bytes | None = None
        self.events_json: bytes | None = None

    # -- queries ------------------------------------------------------------------------------

    def select(self, f: LogFilters | None) -> int:
        """The mask of the lines that pass ``filters`` (times inclusive at both ends).

        Cheapest tests first, so a filter that matches nothing (the usual random time window or
        CVM IP of a load test) costs a comparison or a dict lookup, not big-int work."""
        if f is None:
            return self.full
        ts = self.ts
        lo, hi = 0, self.n
        if f.start_time is not None or f.end_time is not None:
            from .models import parse_utc

            start = parse_utc(f.start_time) if f.start_time else None
            end = parse_utc(f.end_time) if f.end_time else None
            if (start is not None and start > ts[-1]) or (end is not None and end < ts[0]):
                return 0
            if start is not None:
                lo = bisect_left(ts, start)
            if end is not None:
                hi = bisect_right(ts, end)
            if hi <= lo:
                return 0
        m = self.full
        if f.cvm_ips:
            sel = 0
            get = self.ip_mask.get
            for ip in f.cvm_ips:
                sel |= get(ip, 0)
            if not sel:
                return 0
            m = sel
        if f.search_log_string:
            m &= self.search_mask(f.search_log_string)
            if not m:
                return 0
        if f.components:
            sel = 0
            get = self.comp_mask.get
            for c in f.components:
                sel |= get(c, 0)
            m &= sel
            if not m:
                return 0
        if f.log_levels:
            sel = 0
            for lvl in f.log_levels:
                sel |= self.lvl_mask[lvl]
            m &= sel
        if f.is_curated:
            m &= self.curated
        if m and (lo or hi < self.n):
            m &= ((1 << hi) - 1) ^ ((1 << lo) - 1)
        return m

    def severity(self, m: int, into: dict[str, int]) -> None:
        """Add the per-level counts of the lines in ``m`` to ``into``."""
        if not m:
            return
        if m == self.full:
            for lvl, lm in self.lvl_mask.items():
                into[lvl] += lm.bit_count()
            return
        for lvl, lm in self.lvl_mask.items():
            into[lvl] += (m & lm).bit_count()

    def search_mask(self, needle: str) -> int:
        """Lines whose message contains ``needle`` (case-insensitive); cached per needle."""
        key = needle.lower()
        found = self._search.get(key)
        if found is None:
            if self._lower is None:
                self._lower = [m.lower() for m in self.msg]
            bits = "".join("1" if key in m else "0" for m in reversed(self._lower))
            found = int(bits, 2) if bits else 0
            if len(self._search) >= 256:
                self._search.clear()
            self._search[key] = found
        return found

    def lines_json(self) -> list[bytes]:
        """Every line as a serialised search result, built on first use (about 1 ms)."""
        out = self._lines_json
        if out is None:
            bid, ips, dumps = self.bundle_id, self.cvm_ips, orjson.dumps
            out = [
                dumps(
                    {
                        "bundle_id": bid,
                        "timestamp": iso(t),
                        "component": COMPONENTS[c],
                        "log_level": LOG_LEVELS[lv],
                        "cvm_ip": ips[ip],
                        "message": msg,
                    }
                )
                for t, c, lv, ip, msg in zip(
                    self.ts, self.comp, self.lvl, self.ip, self.msg, strict=True
                )
            ]
            self._lines_json = out
        return out

    def page(self, m: int, skip: int, limit: int) -> list[bytes]:
        """Serialised lines of ``m`` from its ``skip``-th match on, at most ``limit``."""
        lines = self.lines_json()
        if m == self.full:
            return lines[skip : skip + limit]
        bits = bin(m)[:1:-1]
        find = bits.find
        if skip > 32:  # bisect the position of the skip-th match, counting in C
            lo, hi = 0, len(bits)
            while lo < hi:
                mid = (lo + hi) // 2
                if bits.count("1", 0, mid + 1) <= skip:
                    lo = mid + 1
                else:
                    hi = mid
            i, skip = lo, 0
        else:
            i = find("1")
        out: list[bytes] = []
        while i >= 0 and len(out) < limit:
            if skip:
                skip -= 1
            else:
                out.append(lines[i])
            i = find("1", i + 1)
        return out

    def _bucket_ranges(self, interval: int) -> list[tuple[int, int, int]]:
        ranges = self._ranges.get(interval)
        if ranges is None:
            ranges = []
            lo = 0
            while lo < self.n:
                b = self.ts[lo] - self.ts[lo] % interval
                hi = bisect_left(self.ts, b + interval, lo)
                ranges.append((b, lo, hi))
                lo = hi
            self._ranges[interval] = ranges
        return ranges

    def full_histogram(self, interval: int) -> tuple[list[tuple[int, int]], bytes]:
        """(bucket start, count) of all lines, and the same as serialised buckets."""
        found = self._hist.get(interval)
        if found is None:
            counts = [(b, hi - lo) for b, lo, hi in self._bucket_ranges(interval)]
            found = (counts, b",".join(bucket_json(b, c) for b, c in counts))
            self._hist[interval] = found
        return found

    def histogram(self, m: int, interval: int) -> list[tuple[int, int]]:
        """(bucket start, count) of the lines in ``m``, by time, empty buckets left out."""
        if not m:
            return []
        if m == self.full:
            return self.full_histogram(interval)[0]
        ranges = self._bucket_ranges(interval)
        bits = bin(m)[:1:-1]
        if m.bit_count() < len(ranges):
            ts, find = self.ts, bits.find
            out: list[tuple[int, int]] = []
            i = find("1")
            while i >= 0:
                b = ts[i] - ts[i] % interval
                if out and out[-1][0] == b:
                    out[-1] = (b, out[-1][1] + 1)
                else:
                    out.append((b, 1))
                i = find("1", i + 1)
            return out
        count = bits.count
        return [(b, c) for b, lo, hi in ranges if (c := count("1", lo, hi))]

    def histogram_json(self, m: int, interval: int) -> bytes:
        """The serialised buckets of ``m`` (comma-separated, no brackets)."""
        if m == self.full:
            return self.full_histogram(interval)[1]
        return b",".join([bucket_json(t, c) for t, c in self.histogram(m, interval)])

    def _pair_masks(self, kind: str) -> list[tuple[int, int]]:
        """(cell, mask) for every non-empty (component, level) or (CVM, level) cell; a cell is
        ``component * 5 + level`` or ``cvm * 5 + level`` (indexes into COMPONENTS, cvm_ips)."""
        found = self._pairs.get(kind)
        if found is None:
            rows = self.ip if kind == "cvm_ip" else self.comp
            found = list(_masks([r * 5 + lv for r, lv in zip(rows, self.lvl, strict=True)]).items())
            self._pairs[kind] = found
        return found

    def heatmap_cells(self, m: int, kind: str) -> list[int]:
        """Line counts of ``m`` per cell (see ``_pair_masks``); ``kind`` is "cvm_ip" or
        "component" (which also serves group_by log_level, transposed)."""
        size = (len(self.cvm_ips) if kind == "cvm_ip" else len(COMPONENTS)) * 5
        if m == self.full:
            cells = self._heat.get(kind)
            if cells is None:
                cells = [0] * size
                for k, mk in self._pair_masks(kind):
                    cells[k] = mk.bit_count()
                self._heat[kind] = cells
            return cells
        cells = [0] * size
        if not m:
            return cells
        pairs = self._pair_masks(kind)
        if m.bit_count() < len(pairs):  # sparse: visit the lines rather than the cells
            rows, lvl = (self.ip if kind == "cvm_ip" else self.comp), self.lvl
            for i in iter_bits(m):
                cells[rows[i] * 5 + lvl[i]] += 1
            return cells
        for k, mk in pairs:
            cells[k] = (m & mk).bit_count()
        return cells

    def count_before(self, m: int, t: float) -> int:
        return (m & ((1 << bisect_left(self.ts, t)) - 1)).bit_count()

    def stream(self, m: int, t: float, rank: int) -> Iterator[tuple[int, int, int, BundleLogs]]:
        """(timestamp, rank, line, self) for the lines of ``m`` at or after time ``t``."""
        ts = self.ts
        for i in iter_bits(m, bisect_left(ts, t)):
            yield ts[i], rank, i, self


_BUCKETS: dict[int, bytes] = {}


def bucket_json(t: int, count: int) -> bytes:
    """``{"time":"...","count":N}`` with the time part cached."""
    head = _BUCKETS.get(t)
    if head is None:
        if len(_BUCKETS) > 500_000:
            _BUCKETS.clear()
        head = _BUCKETS[t] = b'{"time":"' + iso(t).encode() + b'","count":'
    return head + b"%d}" % count


def search_page(
    parts: list[tuple[BundleLogs, int]], total: int, offset: int, limit: int
) -> list[bytes]:
    """The page ``[offset, offset+limit)`` of the matching lines of several bundles, ordered by
    (timestamp, bundle order, line).

    Bundles whose time windows do not overlap (the usual case) are paged bundle by bundle from
    their match counts; overlapping ones are merged, found by bisecting time so deep pages stay
    cheap."""
    parts = sorted(((b, m) for b, m in parts if m), key=lambda p: (p[0].ts[0], p[0].bundle_id))
    if offset >= total or not parts:
        return []
    if all(parts[k][0].ts[0] > parts[k - 1][0].ts[-1] for k in range(1, len(parts))):
        out: list[bytes] = []
        for b, m in parts:
            c = m.bit_count()
            if offset >= c:
                offset -= c
                continue
            out.extend(b.page(m, offset, limit - len(out)))
            offset = 0
            if len(out) >= limit:
                break
        return out
    t = float(parts[0][0].ts[0])
    skip = offset
    if offset:
        lo, hi = int(t), max(b.ts[-1] for b, _ in parts) + 1
        while hi - lo > 1:  # largest time with at most `offset` matches strictly before it
            mid = (lo + hi) // 2
            if sum(b.count_before(m, mid) for b, m in parts) <= offset:
                lo = mid
            else:
                hi = mid
        t = float(lo)
        skip = offset - sum(b.count_before(m, t) for b, m in parts)
    streams = [b.stream(m, t, r) for r, (b, m) in enumerate(parts)]
    merged: Iterator[tuple[int, int, int, BundleLogs]] = heapq.merge(*streams)
    out = []
    for _, _, i, b in merged:
        if skip:
            skip -= 1
            continue
        out.append(b.lines_json()[i])
        if len(out) >= limit:
            break
    return out


def _cvm_ips(rng: Random, path_ip: str | None) -> list[str]:
    """3 to 8 neighbouring CVM addresses of one private subnet, the path's CVM IP first."""
    count = rng.choice((3, 3, 4, 4, 4, 5, 6, 8))
    if path_ip is not None:
        a, b, c, d = (int(x) for x in path_ip.split("."))
    else:
        kind = rng.randrange(3)
        if kind == 0:
            a, b, c = 10, rng.randint(0, 255), rng.randint(0, 255)
        elif kind == 1:
            a, b, c = 172, rng.randint(16, 31), rng.randint(0, 255)
        else:
            a, b, c = 192, 168, rng.randint(0, 255)
        d = rng.randint(10, 200)
    hosts = range(d, d + count) if d + count - 1 <= 254 else range(d, d - count, -1)
    return [f"{a}.{b}.{c}.{h}" for h in hosts if 0 <= h <= 255]


def _events(
    rng: Random, start: int, end: int, ips: Sequence[str], serial: str, comps: Sequence[str]
) -> list[dict[str, Any]]:
    var = _Vars(rng, ips, serial, comps)
    out = []
    for _ in range(rng.randint(3, 25)):
        kind, severity, component, template = rng.choice(_EVENT_KINDS)
        fields = tuple(f for _, f, _, _ in string.Formatter().parse(template) if f)
        out.append((rng.randint(start, end), kind, severity, component, var.fill(template, fields)))
    out.sort()
    return [
        {"timestamp": iso(t), "type": k, "severity": s, "component": c, "description": d}
        for t, k, s, c, d in out
    ]


def question_rng(seed: int, bundle_id: int, question: str) -> Random:
    """A generator for the answer to one question, so the same question gets the same answer."""
    return Random(zlib.crc32(f"{seed}:{bundle_id}:{question}".encode()))


def template_text(index: int) -> str:
    """A message template with its variables shown as ``<name>``."""
    return _TEMPLATES[index][2].replace("{", "<").replace("}", ">")
