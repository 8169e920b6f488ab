"""File descriptors kept back so that a run's results can be written when the process has none
left.

A Locust process opens one connection per user; when its open-file limit (``ulimit -n``) is
below what its users need, the connections it cannot open fail in the process itself, and at
the end the results could not be written either (``Too many open files``, exit 6: the evidence
of the run lost). A few descriptors are held from the start and handed back just before the
results are written. They are opened on this very file: gevent's ``os.close`` frees a regular
file's descriptor at once, any other kind (``/dev/null`` included) only when its loop next runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

#: what writing the results needs at once, with room to spare: a file being written and its
#: folder, the templates of summary.html, a ``git`` subprocess's pipes (the commit tested)
RESERVED = 16


class DescriptorReserve:
    def __init__(self, size: int = RESERVED) -> None:
        self.size = size
        self._held: list[int] = []
        self.take()

    def take(self) -> None:
        """Hold descriptors up to ``size`` (as many as the process can spare)."""
        while len(self._held) < self.size:
            try:
                self._held.append(os.open(__file__, os.O_RDONLY))
            except OSError:
                return

    def release(self) -> None:
        held, self._held = self._held, []
        for fd in held:
            with contextlib.suppress(OSError):
                os.close(fd)

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Hand the descriptors back for the block, then hold them again."""
        self.release()
        try:
            yield
        finally:
            self.take()


_process_reserve: DescriptorReserve | None = None


def process_reserve() -> DescriptorReserve:
    """This process's reserve, made on first use: descriptors are the process's, so every run
    (environment) in it shares one reserve, however many runs a test process makes."""
    global _process_reserve
    if _process_reserve is None:
        _process_reserve = DescriptorReserve()
    return _process_reserve
