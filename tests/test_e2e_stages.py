"""A step run through ``panacea-locust run --stages``, end to end against the reference API:
recorded as the shape it was, without Locust's warnings about options nobody gave."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LocustRun, clean_env, run_panacea

from panacea_locust.reference_api.launcher import ReferenceAPIProcess

pytestmark = pytest.mark.e2e

STAGES = "2:5s,4:5s"  # two stages of one 5 s timeline interval each; 10 s in all
FAST_WAITS = {
    "HEAVY_WAIT_MIN": "0.05",
    "HEAVY_WAIT_MAX": "0.1",
    "LIGHT_WAIT_MIN": "0.1",
    "LIGHT_WAIT_MAX": "0.2",
}
#: one rule every stage has the evidence for (10 requests) and holds on the reference API
SLO = "[total]\np50_ms = 5000\n"
#: what Locust logs when -u/-r/-t come with a shape (locust/main.py, 2.47)
LOCUST_WARNINGS = ("have no impact on LoadShapes", "will be ignored", "Run time limit set")


@pytest.fixture(scope="module")
def step_run(
    reference_api: ReferenceAPIProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocustRun]:
    """One ``--stages`` run shared by the tests of this module (it takes about 12 s)."""
    reference_api.configure(latency="on", latency_scale=0.1, error_rate=0.0, slow_rate=0.0)
    reference_api.reset_stats()
    cwd = tmp_path_factory.mktemp("stages")
    (cwd / "slo.toml").write_text(SLO)
    yield run_panacea(
        ["--host", reference_api.url, "--stages", STAGES, "--slo", str(cwd / "slo.toml")],
        cwd=cwd,
        env=clean_env(**FAST_WAITS),
        timeout=60,
    )


def test_a_stages_run_passes_no_option_locust_would_ignore(step_run: LocustRun) -> None:
    assert step_run.returncode == 0, step_run.stderr[-3000:]
    for warning in LOCUST_WARNINGS:
        assert warning not in step_run.stderr, step_run.stderr[-3000:]
    assert "Shape test updating to 4 users" in step_run.stderr
    summary = step_run.summary()
    assert step_run.run_dir is not None and step_run.run_dir.name.endswith("_step")
    assert summary["run"]["label"] == "step"
    assert 9 <= summary["run"]["duration_s"] < 20  # the shape's 10 s, not smoke's 60 s
    assert summary["total"]["requests"] > 40
    assert summary["verdict"]["outcome"] == "PASS"


def test_a_stages_run_is_recorded_as_the_shape_it_was(step_run: LocustRun) -> None:
    summary = step_run.summary()
    shape = summary["run"]["shape"]
    assert (shape["name"], shape["length_s"]) == ("step", 10.0)
    assert [(s["index"], s["start_s"], s["end_s"], s["users"]) for s in shape["stages"]] == [
        (1, 0.0, 5.0, 2),
        (2, 5.0, 10.0, 4),
    ]
    # Locust's headless defaults (1 user at 1/s) are not what this run was
    assert summary["run"]["locust"].get("num_users") in (None, 4)

    stages = summary["stages"]
    assert [(s["index"], s["users"]) for s in stages] == [(1, 2), (2, 4)]
    assert all(s["total"]["requests"] >= 10 and s["total"]["p50_ms"] for s in stages)
    assert sum(s["total"]["requests"] for s in stages) <= summary["total"]["requests"]
    assert [s["slo"]["status"] for s in stages] == ["held", "held"]
    assert summary["capacity"]["held"] == {"index": 2, "users": 4}
    assert summary["capacity"]["text"] == "held 4 users, no stage broke the rules"

    markdown = (Path(step_run.run_dir or ".") / "summary.md").read_text()
    assert "## Stages (times in ms)" in markdown
    assert "**Capacity**: held 4 users, no stage broke the rules" in markdown
    # the progress line counts towards the shape's length
    assert re.search(r"\[00:0\d/00:10\] users \d", step_run.stderr), step_run.stderr[-2000:]
