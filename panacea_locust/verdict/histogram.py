"""Latency histograms with 3 significant digits, mergeable across Locust workers.

Locust rounds response times to 2 significant digits before computing percentiles, so a p99
of 1234 ms is reported as 1200 ms. This module keeps HdrHistogram's bucket layout (1 us .. 1 h,
3 significant digits, so every recorded value is known to within 0.1 %) and uses the
``hdrhistogram`` package for its wire format, so worker histograms can be merged on the master
without losing precision.

Why not call ``HdrHistogram.record_value`` directly: it costs about 2 us per call in pure
Python, and ``record`` runs for every request. ``LatencyHistogram`` computes the same bucket
index inline into a plain list (about 0.6 us, see ``bench/bench_histogram.py``).

The payload is HdrHistogram's own V2 wire format (any HdrHistogram reads it), but written and
read here, bucket by filled bucket: going through ``HdrHistogram`` objects cost the master
about 35 ms per worker report (a 188 kB counts array per histogram, decoded, copied, summed
and merged whole), a whole core at about 85 workers (``bench/bench_master.py``).

Percentile definition (the same as HdrHistogram's ``get_value_at_percentile``): the value at
percentile ``q`` is the recorded value of rank ``max(1, int(q / 100 * count + 0.5))`` in
ascending order (nearest rank, half rounded up), reported as the highest value equivalent to
it at 3 significant digits, and never above the exact maximum nor below the exact minimum.
No Locust import here: the module is pure and used by the master, the workers and the tests.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
import zlib
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from itertools import accumulate, compress

from hdrh.histogram import HdrHistogram

#: HdrHistogram parameters, in integer microseconds.
LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # 1 hour; larger values are clamped to it
SIGNIFICANT_DIGITS = 3

#: Name of the aggregate over every name of a ``HistogramSet``.
TOTAL = "total"

_PAYLOAD_TAG = "hdr1"
#: HdrHistogram's V2 format: the cookies (8-byte counts), the header of the compressed
#: payload (cookie, length of the counts, normalizing offset, digits, lowest, highest,
#: integer-to-double ratio) and the outer header (cookie, length of what follows)
_V2_ENCODING, _V2_COMPRESSION = 0x1C849303 | 0x10, 0x1C849304 | 0x10
_COOKIE_MASK = ~0xF0
_PAYLOAD_HEADER = struct.Struct(">IIIIqqd")
_OUTER_HEADER = struct.Struct(">II")


def _layout() -> tuple[int, int, int]:
    """Bucket layout of an HdrHistogram(1 us, 1 h, 3 digits): (half-count magnitude, mask, size)."""
    ref = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    if ref.unit_magnitude != 0:  # pragma: no cover - fixed by LOWEST_US == 1
        raise RuntimeError("LatencyHistogram assumes a unit magnitude of 0")
    return ref.sub_bucket_half_count_magnitude, ref.sub_bucket_mask, ref.counts_len


_HALF_MAG, _SUB_MASK, _COUNTS_LEN = _layout()
_HALF_COUNT = 1 << _HALF_MAG
_BUCKET_SHIFT = _HALF_MAG + 1


def _index_for(us: int) -> int:
    """Counts-array index of a value in microseconds (HdrHistogram's own formula, inlined)."""
    b = (us | _SUB_MASK).bit_length() - _BUCKET_SHIFT
    return ((b + 1) << _HALF_MAG) + (us >> b) - _HALF_COUNT


def _clamped_us(ms: float) -> int:
    """A recorded value's microseconds as ``record`` buckets it (rounded, within the range)."""
    return min(max(int(ms * 1000.0 + 0.5), 0), HIGHEST_US)


def _highest_equivalent_us(index: int) -> int:
    """Largest value in microseconds that falls into the bucket at ``index``."""
    bucket = (index >> _HALF_MAG) - 1
    sub = (index & (_HALF_COUNT - 1)) + _HALF_COUNT
    if bucket < 0:
        sub -= _HALF_COUNT
        bucket = 0
    return ((sub + 1) << bucket) - 1


def _put_varint(out: bytearray, value: int) -> None:
    """``value`` ZigZag-encoded as a little-endian base-128 varint (HdrHistogram's V2)."""
    value = (value << 1) if value >= 0 else ((-value) << 1) - 1
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def encode_counts(counts: Mapping[int, int]) -> str:
    """Filled buckets (index -> count) as HdrHistogram V2 compressed, base64: what
    ``HdrHistogram.encode`` writes for the same histogram (a run of empty buckets as one
    negative number), built per filled bucket."""
    out = bytearray()
    expected = 0  # the next index the stream stands at
    for index in sorted(counts):
        n = counts[index]
        if n <= 0:
            continue
        if index > expected:
            _put_varint(out, expected - index)
        _put_varint(out, n)
        expected = index + 1
    header = _PAYLOAD_HEADER.pack(_V2_ENCODING, len(out), 0, SIGNIFICANT_DIGITS, LOWEST_US,
                                  HIGHEST_US, 1.0)  # fmt: skip
    packed = zlib.compress(bytes(header) + bytes(out))
    return base64.b64encode(_OUTER_HEADER.pack(_V2_COMPRESSION, len(packed)) + packed).decode()


def decode_counts(blob: str) -> dict[int, int] | None:
    """The filled buckets of an HdrHistogram V2 base64 blob in this module's layout; None
    for another layout (the caller re-buckets it); ``ValueError`` when it is not one."""
    try:
        raw = base64.b64decode(blob, validate=True)
        cookie, length = _OUTER_HEADER.unpack_from(raw)
        if cookie & _COOKIE_MASK != _V2_COMPRESSION & _COOKIE_MASK or length != len(raw) - 8:
            raise ValueError("not an HdrHistogram V2 compressed histogram")
        data = zlib.decompress(raw[8:])
        cookie, size, offset, digits, low, high, _ = _PAYLOAD_HEADER.unpack_from(data)
    except (binascii.Error, struct.error, zlib.error) as exc:
        raise ValueError(str(exc)) from None
    start = _PAYLOAD_HEADER.size
    if cookie & _COOKIE_MASK != _V2_ENCODING & _COOKIE_MASK or size > len(data) - start:
        raise ValueError("not an HdrHistogram V2 payload")
    if (offset, digits, low, high) != (0, SIGNIFICANT_DIGITS, LOWEST_US, HIGHEST_US):
        return None
    counts: dict[int, int] = {}
    index, pos, end = 0, start, start + size
    try:
        while pos < end:
            value, shift = 0, 0
            while True:
                byte = data[pos]
                pos += 1
                if shift == 56:  # the ninth byte carries 8 bits
                    value |= byte << 56
                    break
                value |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
            n = (value >> 1) ^ -(value & 1)
            if n < 0:
                index -= n
            else:
                if n:
                    counts[index] = n
                index += 1
    except IndexError:
        raise ValueError("an HdrHistogram payload cut short") from None
    if index > _COUNTS_LEN:
        raise ValueError("an HdrHistogram payload beyond its buckets")
    return counts


def _parse_payload(payload: str) -> tuple[int, float, float, float, dict[int, int]]:
    """``(count, sum_ms, min_ms, max_ms, filled buckets)`` of either class's payload;
    ``ValueError`` when malformed or when its buckets do not hold ``count`` values."""
    parts = payload.split(";")
    if len(parts) != 6 or parts[0] != _PAYLOAD_TAG:
        raise ValueError(f"not a {_PAYLOAD_TAG} latency histogram payload")
    try:
        count = int(parts[1])
        total, low, high = float(parts[2]), float(parts[3]), float(parts[4])
        counts = decode_counts(parts[5])
    except ValueError as exc:
        raise ValueError(f"corrupt latency histogram payload: {exc}") from exc
    if count <= 0:
        return 0, 0.0, math.inf, -math.inf, {}
    if counts is None:  # another layout: re-bucket every filled bucket by its value
        counts = _rebucket(parts[5])
    recorded = sum(counts.values())
    if recorded != count:
        raise ValueError(
            f"corrupt latency histogram payload: count {count} but {recorded} values in the buckets"
        )
    return count, total, low, high, counts


def _rebucket(blob: str) -> dict[int, int]:
    """The buckets of a histogram of another layout, moved into this one's by value."""
    try:
        hdr = HdrHistogram.decode(blob)
    except Exception as exc:  # hdrh raises several unrelated types on bad input
        raise ValueError(f"corrupt latency histogram payload: {exc}") from exc
    counts: dict[int, int] = {}
    for index in range(hdr.counts_len):
        n = hdr.get_count_at_index(index)
        if n:
            bucket = _index_for(min(int(hdr.get_value_from_index(index)), HIGHEST_US))
            counts[bucket] = counts.get(bucket, 0) + n
    return counts


class LatencyHistogram:
    """Response times in milliseconds, at 3 significant digits, with exact count/min/max/mean."""

    __slots__ = (
        "_counts", "_count", "_sum", "_min", "_max", "_cumulative", "_cumulative_at",
        "_cumulative_lo",
    )  # fmt: skip

    def __init__(self) -> None:
        self._counts: list[int] = [0] * _COUNTS_LEN
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf
        # running totals of _counts from bucket _cumulative_lo on, for percentile(), valid
        # while _count == _cumulative_at
        self._cumulative: list[int] = []
        self._cumulative_at = -1
        self._cumulative_lo = 0

    def counts_up_to(self, limits: Sequence[int]) -> list[int]:
        """How many values lie in the buckets up to each of ``limits`` (bucket indices,
        ascending), summed slice by slice over the dense counts: what a Prometheus histogram
        needs at each scrape, without building a sparse copy first."""
        out: list[int] = []
        running, start = 0, 0
        for limit in limits:
            running += sum(self._counts[start : limit + 1])
            start = limit + 1
            out.append(running)
        return out

    def record(self, ms: float) -> None:
        """Record one response time; negative values count as 0, NaN and infinities are dropped.

        Values above 1 hour are clamped to 1 hour in the buckets (percentiles), but ``max_ms``
        and ``mean_ms`` keep the real value.
        """
        try:
            us = int(ms * 1000.0 + 0.5)
        except (ValueError, OverflowError):  # NaN, +-inf: no meaningful bucket
            return
        if us > HIGHEST_US:
            us = HIGHEST_US
        elif us < 0:
            us = 0
            ms = 0.0
        b = (us | _SUB_MASK).bit_length() - _BUCKET_SHIFT
        self._counts[((b + 1) << _HALF_MAG) + (us >> b) - _HALF_COUNT] += 1
        self._count += 1
        self._sum += ms
        if ms < self._min:
            self._min = ms
        if ms > self._max:
            self._max = ms

    @property
    def count(self) -> int:
        return self._count

    @property
    def min_ms(self) -> float:
        """Exact smallest recorded value (0.0 when empty)."""
        return self._min if self._count else 0.0

    @property
    def max_ms(self) -> float:
        """Exact largest recorded value (0.0 when empty)."""
        return self._max if self._count else 0.0

    @property
    def mean_ms(self) -> float:
        """Exact arithmetic mean (0.0 when empty)."""
        return self._sum / self._count if self._count else 0.0

    def percentile(self, q: float) -> float:
        """Value at percentile ``q`` (0..100) in ms, by the definition in the module docstring.

        Returns 0.0 for an empty histogram; ``q`` outside 0..100 is clamped.
        """
        if not self._count:
            return 0.0
        q = min(max(q, 0.0), 100.0)
        if q == 0.0:
            return self.min_ms
        cumulative = self._cumulative
        if self._cumulative_at != self._count:  # recorded or merged since the last build
            # running totals over the buckets between the minimum's and the maximum's only
            lo, hi = self._range()
            cumulative = self._cumulative = list(accumulate(self._counts[lo : hi + 1]))
            self._cumulative_lo = lo
            self._cumulative_at = self._count
        target = max(1, int(q * self._count / 100.0 + 0.5))
        index = self._cumulative_lo + bisect_left(cumulative, target)
        value = _highest_equivalent_us(index) / 1000.0
        return min(max(value, self._min), self._max)

    def merge(self, other: LatencyHistogram) -> None:
        """Add every value of ``other`` to this histogram (exact: same bucket layout)."""
        if not other._count:
            return
        self._counts = [a + b for a, b in zip(self._counts, other._counts, strict=True)]
        self._count += other._count
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def merge_sparse(self, other: SparseHistogram) -> None:
        """Add every value of ``other``: a pass over its filled buckets only."""
        if not other.count:
            return
        counts = self._counts
        for index, n in other.counts.items():
            counts[index] += n
        self._count += other.count
        self._sum += other.sum_ms
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def reset(self) -> None:
        """Forget every recorded value."""
        self._counts = [0] * _COUNTS_LEN
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._cumulative = []
        self._cumulative_at = -1

    def copy(self) -> LatencyHistogram:
        clone = LatencyHistogram()
        clone._counts = self._counts[:]
        clone._count, clone._sum, clone._min, clone._max = (
            self._count, self._sum, self._min, self._max,
        )  # fmt: skip
        return clone

    def to_payload(self) -> str:
        """Compact ASCII form for Locust's ``report_to_master`` (msgpack/JSON safe).

        Format: ``hdr1;<count>;<sum_ms>;<min_ms>;<max_ms>;<HdrHistogram base64 V2 blob>``; the
        blob is readable by any HdrHistogram implementation (values in microseconds).
        """
        return _payload(self._count, self._sum, self.min_ms, self.max_ms, self.filled())

    def _range(self) -> tuple[int, int]:
        """The indices of the minimum's and the maximum's buckets: no bucket outside them is
        filled (``count`` must be above 0)."""
        return _index_for(_clamped_us(self._min)), _index_for(_clamped_us(self._max))

    def filled(self) -> dict[int, int]:
        """The filled buckets, index -> count. Only the buckets between those of the exact
        minimum and maximum can be filled, so only those are scanned: a pass over all 23552
        cost about 0.8 ms, which a worker paid per endpoint at each report, its event loop
        blocked meanwhile."""
        if not self._count:
            return {}
        lo, hi = self._range()
        dense = self._counts
        return {i: dense[i] for i in compress(range(lo, hi + 1), dense[lo : hi + 1])}

    @classmethod
    def from_payload(cls, payload: str) -> LatencyHistogram:
        """Rebuild a histogram from ``to_payload()``; ``ValueError`` on a malformed payload."""
        hist = cls()
        hist.merge_sparse(SparseHistogram.from_payload(payload))
        return hist

    def __repr__(self) -> str:
        return (
            f"LatencyHistogram(count={self._count}, min_ms={self.min_ms:.3f}, "
            f"p50_ms={self.percentile(50):.3f}, max_ms={self.max_ms:.3f})"
        )


def _set_extremes(hdr: HdrHistogram, count: int, high_ms: float) -> None:
    """Count and max of an HdrHistogram whose counts were filled by hand: the encoder writes
    the counts up to max_value's bucket (a reader derives min and max from the counts)."""
    hdr.total_count = count
    hdr.max_value = _clamped_us(high_ms)


def _payload(
    count: int, total_ms: float, low_ms: float, high_ms: float, counts: Mapping[int, int]
) -> str:
    blob = encode_counts(counts)
    return ";".join((_PAYLOAD_TAG, str(count), repr(total_ms), repr(low_ms), repr(high_ms), blob))


def percentile_of(
    counts: Mapping[int, int], count: int, q: float, low: float, high: float
) -> float:
    """Percentile ``q`` (0..100) of sparse bucket ``counts`` (index -> count, ``count`` in all)
    by the module docstring's definition, clamped to the exact ``low`` .. ``high``; 0.0 when
    empty. Costs a sort of the filled buckets only, whatever the layout's size."""
    if count <= 0:
        return 0.0
    q = min(max(q, 0.0), 100.0)
    if q == 0.0:
        return low
    target = max(1, int(q * count / 100.0 + 0.5))
    running = 0
    found = _COUNTS_LEN - 1
    for index in sorted(counts):
        running += counts[index]
        if running >= target:
            found = index
            break
    return min(max(_highest_equivalent_us(found) / 1000.0, low), high)


class SparseHistogram:
    """The buckets of :class:`LatencyHistogram`, keeping only the filled ones (a dict).

    Why a second form: the timeline holds one histogram per endpoint and interval, and its
    windows merge many of them. An interval of a few seconds fills a few hundred of the 23552
    buckets, and every pass over ``LatencyHistogram``'s dense list costs about 1 ms, so
    merging, windowing and percentiles here cost per filled bucket instead. Same values, same
    percentile definition, exact count/sum/min/max; merges are exact.
    """

    __slots__ = ("counts", "count", "sum_ms", "_min", "_max")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.sum_ms = 0.0
        self._min = math.inf
        self._max = -math.inf

    def record(self, ms: float) -> None:
        """As ``LatencyHistogram.record`` (inlined the same way: it runs once per request)."""
        try:
            us = int(ms * 1000.0 + 0.5)
        except (ValueError, OverflowError):
            return
        if us > HIGHEST_US:
            us = HIGHEST_US
        elif us < 0:
            us = 0
            ms = 0.0
        b = (us | _SUB_MASK).bit_length() - _BUCKET_SHIFT
        index = ((b + 1) << _HALF_MAG) + (us >> b) - _HALF_COUNT
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1
        self.count += 1
        self.sum_ms += ms
        if ms < self._min:
            self._min = ms
        if ms > self._max:
            self._max = ms

    @property
    def min_ms(self) -> float:
        return self._min if self.count else 0.0

    @property
    def max_ms(self) -> float:
        return self._max if self.count else 0.0

    def percentile(self, q: float) -> float:
        return percentile_of(self.counts, self.count, q, self.min_ms, self.max_ms)

    def merge(self, other: SparseHistogram) -> None:
        if not other.count:
            return
        counts = self.counts
        for index, n in other.counts.items():
            counts[index] = counts.get(index, 0) + n
        self.count += other.count
        self.sum_ms += other.sum_ms
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    @classmethod
    def of(cls, hist: LatencyHistogram) -> SparseHistogram:
        """The filled buckets of ``hist`` (one C-speed pass to find them)."""
        sparse = cls()
        if hist.count:
            sparse.counts = hist.filled()
            sparse.count, sparse.sum_ms = hist._count, hist._sum
            sparse._min, sparse._max = hist._min, hist._max
        return sparse

    def to_hdr(self) -> HdrHistogram:
        """A standard ``HdrHistogram`` (microseconds) of these values, e.g. for an interval log."""
        hdr = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        if self.count:
            for index, n in self.counts.items():
                hdr.counts[index] = n
            _set_extremes(hdr, self.count, self._max)
        return hdr

    def to_payload(self) -> str:
        """``LatencyHistogram.to_payload``'s format: either class reads the other's."""
        return _payload(self.count, self.sum_ms, self.min_ms, self.max_ms, self.counts)

    @classmethod
    def from_payload(cls, payload: str) -> SparseHistogram:
        """Rebuild from either class's payload; ``ValueError`` on a malformed one."""
        sparse = cls()
        count, total, low, high, counts = _parse_payload(payload)
        if count:
            sparse.counts, sparse.count, sparse.sum_ms = counts, count, total
            sparse._min, sparse._max = low, high
        return sparse


class HistogramSet:
    """Histograms by request name, plus a ``total`` over all of them.

    Dense by default: the run's histograms, read at every snapshot (percentiles, Prometheus
    buckets), with the total kept as values come (a merge of the names' dense counts cost
    about 1.5 ms per name at every snapshot: the abort monitor's each second, the web UI's,
    each Prometheus scrape, the event loop blocked meanwhile). ``sparse=True``: what a worker
    records between two reports, only sent on (``drain_payload``), so kept as filled buckets
    and encoded per filled bucket instead of scanning the dense counts. Either reads the
    other's payloads; every histogram shares one bucket layout, so merges are exact.
    """

    def __init__(self, sparse: bool = False) -> None:
        self.sparse = sparse
        self._by_name: dict[str, LatencyHistogram] = {}
        self._sparse: dict[str, SparseHistogram] = {}
        self._total = LatencyHistogram()  #: dense sets only

    def record(self, name: str, ms: float) -> None:
        if self.sparse:
            found = self._sparse.get(name)
            if found is None:
                found = self._sparse[name] = SparseHistogram()
            found.record(ms)
            return
        hist = self._by_name.get(name)
        if hist is None:
            hist = self._by_name[name] = LatencyHistogram()
        hist.record(ms)
        self._total.record(ms)

    def _dense(self, name: str) -> LatencyHistogram:
        """``name``'s dense histogram, made when first needed (not made to be thrown away:
        each holds 23,552 counts)."""
        hist = self._by_name.get(name)
        if hist is None:
            hist = self._by_name[name] = LatencyHistogram()
        return hist

    def get(self, name: str) -> LatencyHistogram | None:
        """The histogram for ``name`` (``TOTAL`` gives the aggregate), or None if never seen;
        a sparse set's is built on the way (a copy)."""
        if name == TOTAL:
            return self.total
        if self.sparse:
            found = self._sparse.get(name)
            if found is None:
                return None
            hist = LatencyHistogram()
            hist.merge_sparse(found)
            return hist
        return self._by_name.get(name)

    def __getitem__(self, name: str) -> LatencyHistogram:
        hist = self.get(name)
        if hist is None:
            raise KeyError(name)
        return hist

    def __contains__(self, name: object) -> bool:
        return name == TOTAL or name in (self._sparse if self.sparse else self._by_name)

    def __iter__(self) -> Iterator[str]:
        """Request names (without ``TOTAL``), sorted."""
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._sparse if self.sparse else self._by_name)

    def names(self) -> list[str]:
        return sorted(self._sparse if self.sparse else self._by_name)

    @property
    def total(self) -> LatencyHistogram:
        """Every name's values together (a copy: the caller may change it)."""
        if self.sparse:
            total = LatencyHistogram()
            for found in self._sparse.values():
                total.merge_sparse(found)
            return total
        return self._total.copy()

    def merge(self, other: HistogramSet) -> None:
        if self.sparse or other.sparse:
            self.merge_sparse({name: SparseHistogram.of(other[name]) for name in other.names()})
            return
        for name, hist in other._by_name.items():
            self._dense(name).merge(hist)
        self._total.merge(other._total)

    def to_payload(self) -> dict[str, str]:
        """``{request name: LatencyHistogram payload}`` for non-empty names (no total)."""
        found: Mapping[str, LatencyHistogram | SparseHistogram] = (
            self._sparse if self.sparse else self._by_name
        )
        return {name: h.to_payload() for name, h in found.items() if h.count}

    def merge_payload(self, payload: Mapping[str, str]) -> None:
        """Merge a worker's ``to_payload()``/``drain_payload()`` into this set.

        A ``total`` entry, if a sender included one, is ignored: the total is always derived.
        ``ValueError`` when an entry is malformed (nothing of that payload is merged then).
        """
        self.merge_sparse(decode_payload(payload))

    def merge_sparse(self, histograms: Mapping[str, SparseHistogram]) -> None:
        """Add decoded histograms by name (a pass over their filled buckets)."""
        for name, hist in histograms.items():
            if self.sparse:
                self._sparse.setdefault(name, SparseHistogram()).merge(hist)
            else:
                self._dense(name).merge_sparse(hist)
                self._total.merge_sparse(hist)

    def drain_payload(self) -> dict[str, str]:
        """The payload of everything recorded since the last drain, then start afresh.

        Meant for a worker's ``report_to_master`` handler: each report carries only the new
        interval, and the master's ``merge_payload`` adds the intervals up.
        """
        payload = self.to_payload()
        self.reset()
        return payload

    def reset(self) -> None:
        self._by_name = {}
        self._sparse = {}
        if not self.sparse:  # a sparse set never uses it: no new 23,552 counts at each drain
            self._total = LatencyHistogram()


def decode_payload(payload: Mapping[str, str]) -> dict[str, SparseHistogram]:
    """A ``HistogramSet`` payload decoded, every entry or none (``ValueError``); a ``total``
    entry, if a sender included one, is left out: the total is always derived."""
    return {name: SparseHistogram.from_payload(p) for name, p in payload.items() if name != TOTAL}


def mixture_percentile(parts: Sequence[tuple[LatencyHistogram, float]], q: float) -> float | None:
    """Percentile ``q`` (0..100) of a mix in which each histogram holds ``share`` of the requests.

    Used to judge a run's total on another run's endpoint mix: each histogram's counts are
    scaled to its share, so a chance shift of the mix does not move the result. None when no
    part with a positive share has values. The rank rule is the nearest rank of the module
    docstring, applied to the weighted counts.
    """
    used = [(h, share) for h, share in parts if h.count and share > 0]
    if not used:
        return None
    whole = sum(share for _, share in used)
    weights = [0.0] * _COUNTS_LEN
    for hist, share in used:
        scale = share / whole / hist.count
        for index, n in enumerate(hist._counts):
            if n:
                weights[index] += n * scale
    target = min(max(q, 0.0), 100.0) / 100.0
    running = 0.0
    found = len(weights) - 1
    for index, w in enumerate(weights):
        running += w
        if w and running >= target - 1e-12:
            found = index
            break
    low = min(h.min_ms for h, _ in used)
    high = max(h.max_ms for h, _ in used)
    return min(max(_highest_equivalent_us(found) / 1000.0, low), high)
