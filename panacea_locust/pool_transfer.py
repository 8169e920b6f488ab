"""The master's database data, shipped to its workers in chunks.

In database mode only the master of a distributed run reads ClickHouse: N workers querying it
themselves were N identical loads on the database behind the API under test, and a worker
without a route to the database could not run on its data at all. The master loads the ids
once, packs them here (JSON, zlib-compressed, cut into chunks small enough for one Locust
message each) and sends the chunks to every worker it accepts; each worker puts them back
together, checks the digest and runs on exactly the master's data.

Pure: no Locust, no gevent; the sending and receiving are ``event_handlers.py``'s.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from panacea_locust.payload_generator import POOL_KINDS, PoolData

#: The bytes of one chunk: a Locust message is read whole into memory on both sides, and a
#: worker's reports and heartbeats share its socket with the chunks, so none is large.
CHUNK_BYTES = 256 * 1024


class TransferError(ValueError):
    """A chunk that does not fit the transfer under way (or the whole does not decode)."""


@dataclass(frozen=True)
class Packed:
    """The chunks of one ``PoolData``, ready to send, and what they weigh."""

    digest: str  #: SHA-256 of the compressed whole, in hex: names the transfer, checks it
    chunks: tuple[bytes, ...]
    raw_bytes: int  #: the JSON before compression

    @property
    def sent_bytes(self) -> int:
        return sum(len(c) for c in self.chunks)

    def messages(self) -> list[dict[str, Any]]:
        """One message body per chunk (msgpack carries ``bytes`` as they are)."""
        count = len(self.chunks)
        return [
            {"digest": self.digest, "seq": seq, "count": count, "chunk": chunk}
            for seq, chunk in enumerate(self.chunks)
        ]


def pack(data: PoolData, chunk_bytes: int = CHUNK_BYTES) -> Packed:
    """``data`` as chunks: every kind, the fallbacks and the source, nothing else."""
    body = {kind: getattr(data, kind) for kind in POOL_KINDS}
    body["fallbacks"] = dict(data.fallbacks)
    body["source"] = data.source
    raw = json.dumps(body, separators=(",", ":")).encode()
    packed = zlib.compress(raw, 6)
    chunks = tuple(packed[i : i + chunk_bytes] for i in range(0, len(packed), chunk_bytes))
    return Packed(hashlib.sha256(packed).hexdigest(), chunks or (b"",), len(raw))


def unpack(packed: bytes, digest: str) -> PoolData:
    """The ``PoolData`` of a whole transfer; ``TransferError`` if it is not what was sent."""
    if hashlib.sha256(packed).hexdigest() != digest:
        raise TransferError("the master's data arrived damaged (digest differs)")
    try:
        body = json.loads(zlib.decompress(packed))
    except (zlib.error, ValueError) as err:
        raise TransferError(f"the master's data does not decode: {err}") from None
    if not isinstance(body, dict):
        raise TransferError("the master's data is not an object")
    data = PoolData(
        fallbacks={str(k): str(v) for k, v in dict(body.get("fallbacks") or {}).items()},
        source=str(body.get("source", "generated")),
    )
    for kind in POOL_KINDS:
        values = list(body.get(kind) or [])
        if kind == "sessions":  # JSON has no tuples
            values = [(str(u), str(s)) for u, s in values]
        setattr(data, kind, values)
    return data


@dataclass
class Assembler:
    """A worker's side: chunks in, the whole ``PoolData`` out once the last has come.

    Chunks of a newer transfer (another digest) replace an unfinished one: a master that
    sends again (a reconnect) sends everything again.
    """

    digest: str = ""
    count: int = 0
    parts: dict[int, bytes] = field(default_factory=dict)

    def add(self, message: Any) -> PoolData | None:
        """Take one message body; the data when it completed the transfer, else None."""
        if not isinstance(message, dict):
            raise TransferError("a data chunk that is not a message body")
        digest, seq, count = message.get("digest"), message.get("seq"), message.get("count")
        chunk = message.get("chunk")
        if not (isinstance(digest, str) and isinstance(seq, int) and isinstance(count, int)
                and isinstance(chunk, bytes) and 0 <= seq < count):  # fmt: skip
            raise TransferError("a data chunk without digest, seq < count and bytes")
        if digest != self.digest:
            self.digest, self.count, self.parts = digest, count, {}
        elif count != self.count:
            raise TransferError("data chunks of one transfer disagree on their count")
        self.parts[seq] = chunk
        if len(self.parts) < self.count:
            return None
        whole = b"".join(self.parts[i] for i in range(self.count))
        self.parts = {}
        return unpack(whole, digest)
