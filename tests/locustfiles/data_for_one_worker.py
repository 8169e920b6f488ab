"""The framework's locustfile, with a master that sends its data to its first worker only:
the other worker's users wait for data that never comes (what CI once saw by chance, when a
worker had connected while its master was still loading the data).

Used to check that users that never got going are accounted for: the run applied less load
than planned, so it is no PASS.
"""

from panacea_locust.event_handlers import PanaceaRun

_send = PanaceaRun._send_data
_served: list[str] = []


def _send_to_the_first_worker(self: PanaceaRun, node_id: str) -> None:
    if not _served or node_id in _served:
        _served.append(node_id)
        _send(self, node_id)


PanaceaRun._send_data = _send_to_the_first_worker  # type: ignore[method-assign]

from panacea_locust.locustfile import *  # noqa: E402,F403
