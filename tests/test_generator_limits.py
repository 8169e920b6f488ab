"""The load generator's own limits: a request that fails in it is not the target's failure,
and a process out of descriptors can still write its results.

The end-to-end case (a real Locust run allowed 60 open files, 80 users, the real reference
API) is ``test_a_load_generator_out_of_descriptors_is_inconclusive_not_a_failing_api`` in
``test_e2e_run.py``.
"""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from panacea_locust.base_user import failure_reason
from panacea_locust.verdict.health import GENERATOR_FAILURE, generator_failure_warning


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.EMFILE, "too many open files (EMFILE)"),
        (errno.ENFILE, "too many open files in the system (ENFILE)"),
        (errno.EADDRNOTAVAIL, "no local port free (EADDRNOTAVAIL)"),
    ],
)
def test_the_generators_own_shortages_are_named_as_its_own(code: int, reason: str) -> None:
    assert failure_reason(0, OSError(code, "x")) == GENERATOR_FAILURE + reason


def test_the_targets_refusal_stays_a_connection_error() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    assert failure_reason(0, refused) == "connection error (ConnectionRefusedError)"


def test_the_warning_counts_the_generators_failures_only() -> None:
    total = {"failures_by_reason": {GENERATOR_FAILURE + "too many open files (EMFILE)": 7,
                                    "HTTP 500": 3}}  # fmt: skip
    warning = generator_failure_warning(total)
    assert warning is not None and warning.startswith("7 requests failed in the load generator")
    assert generator_failure_warning({"failures_by_reason": {"HTTP 500": 3}}) is None


_FULL_TABLE = """
import os, resource, sys
from gevent import monkey
monkey.patch_all()
import gevent  # a running hub: gevent's os.close defers what is not a regular file
gevent.sleep(0)
from panacea_locust import descriptors
if sys.argv[1] == "devnull":  # the first version: held on /dev/null
    descriptors.__file__ = os.devnull
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
reserve = descriptors.DescriptorReserve()
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
with reserve.released():
    try:
        with open(os.path.join(sys.argv[2], "summary.json"), "w") as f:
            f.write("{}")
        print("written")
    except OSError as err:
        print("failed", err.errno)
"""


@pytest.mark.parametrize(("held_on", "expected"), [("file", "written"), ("devnull", "failed 24")])
def test_a_process_out_of_descriptors_still_writes_its_results(
    tmp_path: object, held_on: str, expected: str
) -> None:
    """Every descriptor taken, the reserve handed back: the file can be written. Held on
    /dev/null (the first version) it could not: gevent closes such a descriptor only when its
    loop next runs, and the results are written without yielding to it."""
    done = subprocess.run(
        [sys.executable, "-c", _FULL_TABLE, held_on, str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.strip() == expected, done.stderr[-2000:]
