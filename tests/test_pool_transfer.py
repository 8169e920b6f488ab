"""The master's pool data, packed into chunks and put back together on a worker
(``pool_transfer.py``): what arrives is what was loaded, or a clear error, never other data."""

from __future__ import annotations

import random

import pytest

from panacea_locust.payload_generator import POOL_KINDS, PoolData
from panacea_locust.pool_transfer import CHUNK_BYTES, Assembler, TransferError, pack, unpack


def loaded(bundles: int, seed: int = 7) -> PoolData:
    rng = random.Random(seed)
    return PoolData(
        sessions=[(f"user-{i}", f"{rng.getrandbits(128):032x}") for i in range(200)],
        bundle_ids=sorted(rng.sample(range(1, 10**9), bundles)),
        combo_ids=[3, 5, 8],
        sfdc_cases=[f"{rng.randrange(10**9):09d}" for _ in range(50)],
        bundle_paths=[f"/mnt/bundles/{rng.getrandbits(64):x}.tar.gz" for _ in range(bundles)],
        fallbacks={"combo_ids": "table combo_bundles is empty"},
        source="database",
    )


def deliver(messages: list[dict], assembler: Assembler | None = None) -> PoolData | None:
    assembler = assembler or Assembler()
    results = [assembler.add(m) for m in messages]
    assert all(r is None for r in results[:-1]), "data before the last chunk"
    return results[-1]


def test_what_arrives_is_what_was_loaded_every_kind_and_the_fallbacks() -> None:
    data = loaded(50_000)
    packed = pack(data)
    assert len(packed.chunks) > 1 and all(len(c) <= CHUNK_BYTES for c in packed.chunks)
    assert packed.sent_bytes < packed.raw_bytes  # compressed
    got = deliver(packed.messages())
    assert got is not None
    for kind in POOL_KINDS:
        assert getattr(got, kind) == getattr(data, kind), kind
    assert got.sessions and isinstance(got.sessions[0], tuple)
    assert got.fallbacks == data.fallbacks and got.source == "database"
    assert got.describe() == data.describe()


def test_chunks_in_any_order_and_generated_data_in_one_small_chunk() -> None:
    messages = pack(loaded(30_000), chunk_bytes=20_000).messages()
    shuffled = messages[:]
    random.Random(1).shuffle(shuffled)
    assembler = Assembler()
    got = [assembler.add(m) for m in shuffled]
    assert got[-1] is not None and got[-1].bundle_ids == loaded(30_000).bundle_ids
    assert all(g is None for g in got[:-1])
    small = pack(PoolData())
    assert len(small.chunks) == 1 and small.sent_bytes < 200
    empty = deliver(small.messages())
    assert empty is not None and empty.describe()["mode"] == "generated"


def test_a_damaged_chunk_is_refused_not_used() -> None:
    messages = pack(loaded(20_000), chunk_bytes=10_000).messages()
    chunk = bytearray(messages[1]["chunk"])
    chunk[10] ^= 0xFF
    messages[1] = {**messages[1], "chunk": bytes(chunk)}
    with pytest.raises(TransferError, match="damaged"):
        deliver(messages)


def test_a_newer_transfer_replaces_an_unfinished_one() -> None:
    old = pack(loaded(20_000, seed=1), chunk_bytes=10_000).messages()
    new = pack(loaded(20_000, seed=2), chunk_bytes=10_000).messages()
    assembler = Assembler()
    assert assembler.add(old[0]) is None and len(assembler.parts) == 1
    got = deliver(new, assembler)
    assert got is not None and got.bundle_ids == loaded(20_000, seed=2).bundle_ids


@pytest.mark.parametrize(
    "message",
    [None, {"digest": "x", "seq": 0, "count": 1}, {"digest": "x", "seq": 2, "count": 2,
                                                   "chunk": b""}, {"seq": 0, "count": 1,
                                                                    "chunk": b"x"}],
)  # fmt: skip
def test_a_malformed_chunk_is_a_transfer_error(message: object) -> None:
    with pytest.raises(TransferError):
        Assembler().add(message)


def test_chunks_of_one_transfer_must_agree_on_their_count() -> None:
    messages = pack(loaded(20_000), chunk_bytes=10_000).messages()
    assembler = Assembler()
    assembler.add(messages[0])
    with pytest.raises(TransferError, match="count"):
        assembler.add({**messages[1], "count": messages[1]["count"] + 1})


def test_bytes_that_are_not_the_data_do_not_decode() -> None:
    import hashlib

    junk = b"not zlib at all"
    with pytest.raises(TransferError, match="does not decode"):
        unpack(junk, hashlib.sha256(junk).hexdigest())
