"""Live Prometheus metrics (``--prometheus-port``): what ``/metrics`` serves, scraped over HTTP
on loopback, equals what was fed; the histogram conversion, exactly; a master serves what its
workers report; the dashboard names only served metrics; and a real Prometheus scraping a real
run ends with the figures of its ``summary.json``."""

from __future__ import annotations

import json
import random
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from conftest import ROOT, clean_env, run_panacea
from locust import User, constant, task
from locust.env import Environment
from locust.event import Events
from locust.exception import CatchResponseError
from locust.runners import WorkerNode
from locust.stats import setup_distributed_stats_event_listeners
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_fixture import JOB, PrometheusServer, prometheus_server
from test_layers import modules_after_importing, of_packages

from panacea_locust.contract import ENDPOINTS
from panacea_locust.event_handlers import PanaceaRun, endpoint_names
from panacea_locust.observability.metrics import DURATION_BUCKETS_S, cumulative_buckets
from panacea_locust.observability.prometheus import PrometheusExporter
from panacea_locust.reference_api.launcher import ReferenceAPIProcess
from panacea_locust.verdict.histogram import LatencyHistogram, SparseHistogram
from panacea_locust.verdict.thresholds import load_slo

ENDPOINT_NAMES = [e.path for e in ENDPOINTS]
INFO, SEARCH, HEATMAP = "/api/v1/logs/info", "/api/v1/logs/search", "/api/v1/logs/heatmap"
DASHBOARD = ROOT / "dashboards" / "panacea.json"
#: response times (ms) fed to one endpoint: none within 0.1 % of a bucket bound
TIMES_MS = (0.4, 3.0, 3.0, 40.0, 700.0, 1200.0, 9000.0, 70000.0)
FAMILIES = (
    "panacea_requests", "panacea_failures", "panacea_request_duration_seconds", "panacea_users",
    "panacea_slo_rule_passing", "panacea_load_generator_cpu_percent", "panacea_run_info",
    "panacea_stale_resends", "panacea_stalled_starts",
)  # fmt: skip


# --- helpers ---------------------------------------------------------------------------------
def fire(run: PanaceaRun, name: str, ms: float, exception: Exception | None = None) -> None:
    """What Locust's clients fire after each request."""
    run.environment.events.request.fire(
        request_type="GET", name=name, response_time=ms, response_length=2, response=None,
        context={}, exception=exception, start_time=0.0, url=name,
    )  # fmt: skip


def acceptable(run: PanaceaRun, name: str, status: int = 404) -> None:
    """An acceptable 4xx, as ``PanaceaAPIUser`` counts it: in the tally, a success to Locust."""
    run.context.tally.acceptable_response(name, status)
    fire(run, name, 2.0)


def scrape(exporter: PrometheusExporter) -> dict[str, Metric]:
    """``GET /metrics`` over loopback, parsed as Prometheus parses it."""
    with urllib.request.urlopen(exporter.url, timeout=10) as response:
        text = response.read().decode("utf-8")
    return {family.name: family for family in text_string_to_metric_families(text)}


def values(family: Metric, sample: str | None = None, **labels: str) -> dict[tuple, float]:
    """The samples of ``family`` (named ``sample``, default any) whose labels include
    ``labels``, keyed by their other labels' values in the order of the labels' names."""
    out = {}
    for s in family.samples:
        if (sample or s.name) != s.name or any(s.labels.get(k) != v for k, v in labels.items()):
            continue
        out[tuple(s.labels[k] for k in sorted(s.labels) if k not in labels)] = s.value
    return out


@pytest.fixture
def exporter_of(
    new_run: Callable[..., PanaceaRun],
) -> Iterator[Callable[..., tuple[PanaceaRun, PrometheusExporter]]]:
    """A run (``new_run``'s local runner) with its exporter serving on a free loopback port."""
    made: list[PrometheusExporter] = []

    def make(**environment: Any) -> tuple[PanaceaRun, PrometheusExporter]:
        run = new_run(**environment)
        exporter = PrometheusExporter(run.environment)
        exporter.start()
        made.append(exporter)
        return run, exporter

    yield make
    for exporter in made:
        exporter.stop()


def write_slo(tmp_path: Path, text: str, run: PanaceaRun) -> None:
    path = tmp_path / "slo.toml"
    path.write_text(text)
    run.state.slo = load_slo(path, endpoint_names(run.context.settings))


class Idle(User):
    """A user that sends nothing: counted among the running users, nothing else."""

    wait_time = constant(1)

    @task
    def idle(self) -> None:
        gevent.sleep(1)


# --- the pure conversion ---------------------------------------------------------------------
def test_buckets_count_the_values_at_or_under_each_bound() -> None:
    hist = LatencyHistogram()
    for ms in TIMES_MS:
        hist.record(ms)
    expected = [sum(ms / 1000 <= b for ms in TIMES_MS) for b in DURATION_BUCKETS_S]
    assert cumulative_buckets(hist) == [*expected, len(TIMES_MS)]
    assert cumulative_buckets(SparseHistogram.of(hist)) == cumulative_buckets(hist)
    assert cumulative_buckets(LatencyHistogram()) == [0] * (len(DURATION_BUCKETS_S) + 1)
    assert cumulative_buckets(hist, (0.001, 0.005)) == [1, 3, len(TIMES_MS)]


def test_a_value_counts_under_a_bound_only_when_its_whole_bucket_is_under_it() -> None:
    """3 significant digits: a recorded 1000 ms is 1000.000 to 1000.447 ms, so it is not
    certainly <= 1 s (the verdict reads it as 1000.4 ms too), while 999.9 ms is."""
    hist = LatencyHistogram()
    for ms in (999.9, 1000.0):
        hist.record(ms)
    assert cumulative_buckets(hist, (1.0, 1.001)) == [1, 2, 2]
    exact = LatencyHistogram()  # under 2.048 ms every microsecond has its own bucket
    exact.record(1.0)
    assert cumulative_buckets(exact, (0.001,)) == [1, 1]


def test_buckets_are_within_the_histograms_precision_of_an_exact_count() -> None:
    rng = random.Random(16)
    times = [rng.lognormvariate(4.0, 2.0) for _ in range(5000)]
    hist = LatencyHistogram()
    for ms in times:
        hist.record(ms)
    counts = cumulative_buckets(hist)
    for bound, count in zip(DURATION_BUCKETS_S, counts, strict=False):
        at_most = sum(ms / 1000 <= bound for ms in times)
        well_under = sum(ms / 1000 <= bound * (1 - 2e-3) for ms in times)
        assert well_under <= count <= at_most, bound
    assert counts[-1] == len(times)


def test_bounds_must_ascend() -> None:
    with pytest.raises(ValueError, match="ascending"):
        cumulative_buckets(LatencyHistogram(), (0.5, 0.1))


def test_the_metric_module_loads_neither_locust_nor_gevent() -> None:
    loaded = modules_after_importing("panacea_locust.observability.metrics")
    assert "panacea_locust.observability.metrics" in loaded
    assert of_packages(loaded, "locust", "gevent") == []
    # the same check sees the glue load Locust
    glue = modules_after_importing("panacea_locust.observability.prometheus")
    assert "locust" in of_packages(glue, "locust", "gevent")


# --- an exporter on a local run, scraped over HTTP --------------------------------------------
def test_requests_failures_and_latencies_are_served_as_fed(
    exporter_of: Callable[..., tuple[PanaceaRun, PrometheusExporter]],
) -> None:
    run, exporter = exporter_of()
    for ms in TIMES_MS:
        fire(run, HEATMAP, ms)
    acceptable(run, HEATMAP, 404)
    acceptable(run, HEATMAP, 400)
    fire(run, SEARCH, 5.0, CatchResponseError("HTTP 500"))
    fire(run, SEARCH, 6.0, CatchResponseError("HTTP 500"))
    fire(run, SEARCH, 7.0, CatchResponseError("HTTP 503"))
    fire(run, SEARCH, 8.0)

    families = scrape(exporter)
    assert set(FAMILIES) <= set(families)
    requests = families["panacea_requests"]
    assert values(requests, endpoint=HEATMAP) == {
        ("success",): len(TIMES_MS), ("failure",): 0, ("acceptable",): 2,
    }  # fmt: skip
    assert values(requests, endpoint=SEARCH) == {
        ("success",): 1, ("failure",): 3, ("acceptable",): 0,
    }  # fmt: skip
    # every endpoint of the contract is listed from the start
    served = {labels[0] for labels in values(requests, outcome="success")}
    assert served == set(ENDPOINT_NAMES)
    assert values(requests, endpoint=INFO) == {("success",): 0, ("failure",): 0,
                                               ("acceptable",): 0}  # fmt: skip
    # failure reasons as summary.json gives them (Locust's CatchResponseError('...') cleaned)
    assert values(families["panacea_failures"]) == {
        (SEARCH, "HTTP 500"): 2, (SEARCH, "HTTP 503"): 1,
    }  # fmt: skip
    summary = run.collect_summary(final=False)
    assert summary["endpoints"][SEARCH]["failures_by_reason"] == {"HTTP 500": 2, "HTTP 503": 1}

    durations = families["panacea_request_duration_seconds"]
    buckets = values(durations, "panacea_request_duration_seconds_bucket", endpoint=HEATMAP)
    answered = [*TIMES_MS, 2.0, 2.0]  # the acceptable answers got an answer, and a time
    for bound in DURATION_BUCKETS_S:
        le = repr(float(bound))
        assert buckets[(le,)] == sum(ms / 1000 <= bound for ms in answered), le
    assert buckets[("+Inf",)] == len(answered)
    count = values(durations, "panacea_request_duration_seconds_count", endpoint=HEATMAP)
    total = values(durations, "panacea_request_duration_seconds_sum", endpoint=HEATMAP)
    assert count == {(): len(answered)}
    assert total[()] == pytest.approx(sum(answered) / 1000, rel=1e-9)
    # failed requests are not in the latency histogram (a refused connection is fast)
    search = values(durations, "panacea_request_duration_seconds_count", endpoint=SEARCH)
    assert search == {(): 1}


def test_rules_users_cpu_and_run_info_are_served(
    exporter_of: Callable[..., tuple[PanaceaRun, PrometheusExporter]], tmp_path: Path
) -> None:
    run, exporter = exporter_of(user_classes=[Idle], host="http://127.0.0.1:9")
    write_slo(
        tmp_path,
        "[total]\nmax_failure_ratio = 0.0\np99_ms = 5000\n"
        '[endpoints."/api/v1/logs/info"]\nmax_failure_ratio = 0.0\n',
        run,
    )
    runner = run.environment.runner
    assert runner is not None
    runner.start(3, spawn_rate=100)  # a test starts (Locust clears its statistics)
    assert runner.spawning_greenlet is not None
    runner.spawning_greenlet.join(timeout=10)
    fire(run, INFO, 10.0)
    fire(run, INFO, 11.0)
    fire(run, SEARCH, 5.0, CatchResponseError("HTTP 500"))

    families = scrape(exporter)
    # total has a failure: fails; info has none: passes; p99 with 3 requests: no series
    assert values(families["panacea_slo_rule_passing"]) == {  # (metric, scope)
        ("max_failure_ratio", "total"): 0.0,
        ("max_failure_ratio", INFO): 1.0,
    }
    statuses = {(r["scope"], r["metric"]): r["status"]
                for r in run.collect_summary(final=False)["thresholds"]["rules"]}  # fmt: skip
    assert statuses[("total", "p99_ms")] == "insufficient"
    assert values(families["panacea_users"]) == {("Idle",): 3.0}
    assert values(families["panacea_stale_resends"]) == {(): 0.0}
    run.context.tally.stale_resends += 2  # what users count (tests/faults/test_stale_connections)
    assert values(scrape(exporter)["panacea_stale_resends"]) == {(): 2.0}
    assert values(families["panacea_stalled_starts"]) == {(): 0.0}
    run.context.tally.stalled_starts += 3  # what users count (test_e2e_run: never got going)
    assert values(scrape(exporter)["panacea_stalled_starts"]) == {(): 3.0}
    info = families["panacea_run_info"].samples
    assert [(i.labels, i.value) for i in info] == [
        ({"label": "locust", "host": "http://127.0.0.1:9", "target_version": ""}, 1.0)
    ]
    cpu = values(families["panacea_load_generator_cpu_percent"])
    assert list(cpu) == [("local",)] and cpu[("local",)] >= 0

    end = time.process_time() + 1.2  # a window of pure work, longer than the minimum
    while time.process_time() < end:
        pass
    busy = values(scrape(exporter)["panacea_load_generator_cpu_percent"])[("local",)]
    assert busy > 25


def test_two_environments_in_one_process_do_not_mix(
    exporter_of: Callable[..., tuple[PanaceaRun, PrometheusExporter]],
) -> None:
    (a, exporter_a), (b, exporter_b) = exporter_of(), exporter_of()
    assert exporter_a.url != exporter_b.url
    fire(a, INFO, 1.0)
    fire(a, INFO, 1.0)
    fire(b, INFO, 1.0)
    served_a = values(scrape(exporter_a)["panacea_requests"], endpoint=INFO, outcome="success")
    served_b = values(scrape(exporter_b)["panacea_requests"], endpoint=INFO, outcome="success")
    assert (served_a, served_b) == ({(): 2.0}, {(): 1.0})
    assert b"panacea_" not in generate_latest(REGISTRY)  # never the process-wide registry
    with pytest.raises(RuntimeError, match="already has"):
        PrometheusExporter(a.environment)


def test_the_final_scrape_is_awaited_then_the_server_stops(
    exporter_of: Callable[..., tuple[PanaceaRun, PrometheusExporter]],
) -> None:
    run, exporter = exporter_of()
    scrape(exporter)  # a scrape before the end does not count as the final one
    assert exporter.await_final_scrape(0.2) is False
    late = gevent.spawn_later(0.2, scrape, exporter)
    assert exporter.await_final_scrape(10.0) is True
    late.join()
    run.environment.events.quit.fire(exit_code=0)  # Locust's last event: the server stops
    with pytest.raises(OSError):
        scrape(exporter)


def test_a_master_serves_what_its_workers_report(tmp_path: Path) -> None:
    """A master reads its own statistics and tally, which the workers' reports feed: the
    same metrics as a local run, with each worker's CPU share."""
    from clickhouse_fixture import free_port

    worker_env = Environment(events=Events())
    worker_env.create_local_runner()
    setup_distributed_stats_event_listeners(worker_env.events, worker_env.stats)
    worker = PanaceaRun(worker_env)
    master_env = Environment(events=Events(), user_classes=[Idle])
    master_env.create_master_runner("127.0.0.1", free_port())
    PanaceaRun(master_env)
    exporter = PrometheusExporter(master_env)
    exporter.start()
    try:
        fire(worker, INFO, 12.0)
        acceptable(worker, INFO)
        fire(worker, SEARCH, 5.0, CatchResponseError("HTTP 500"))
        data: dict[str, Any] = {}
        worker_env.events.report_to_master.fire(client_id="w1", data=data)
        data["panacea_cpu"] = 37.5
        assert master_env.runner is not None
        clients = master_env.runner.clients  # type: ignore[attr-defined]
        clients["w1"] = WorkerNode("w1")
        clients["w1"].user_classes_count = {"Idle": 2}
        master_env.events.worker_report.fire(client_id="w1", data=data)

        families = scrape(exporter)
        assert values(families["panacea_requests"], endpoint=INFO) == {
            ("success",): 1, ("failure",): 0, ("acceptable",): 1,
        }  # fmt: skip
        assert values(families["panacea_failures"]) == {(SEARCH, "HTTP 500"): 1}
        durations = families["panacea_request_duration_seconds"]
        assert values(durations, "panacea_request_duration_seconds_count", endpoint=INFO) == {(): 2}
        assert values(families["panacea_users"]) == {("Idle",): 2.0}
        assert values(families["panacea_load_generator_cpu_percent"]) == {("w1",): 37.5}
        del clients["w1"]  # a worker that left is no longer shown
        assert values(scrape(exporter)["panacea_load_generator_cpu_percent"]) == {}
    finally:
        exporter.stop()
        master_env.runner.quit()
        assert worker_env.runner is not None
        worker_env.runner.quit()


# --- the Grafana dashboard --------------------------------------------------------------------
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
             "or", "unless", "offset", "inf", "nan"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (with Grafana variables) selects: its identifiers
    less strings, label matchers, ranges, grouping labels, functions and keywords."""
    expr = re.sub(r"label_values\(\s*([^,()]+?)\s*,\s*\w+\s*\)", r"\1", expr)
    expr = re.sub(r"\$\{[^}]*\}|\$\w+", "", expr)
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        following = expr[match.end() :].lstrip()
        if match.group() not in _KEYWORDS and not following.startswith("("):
            names.add(match.group())
    return names


def dashboard_expressions(node: Any) -> list[str]:
    """Every PromQL text of a dashboard: panel targets' ``expr`` and template queries."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                found.append(value)
            elif key == "query" and node.get("type") == "query":
                found.append(value["query"] if isinstance(value, dict) else value)
            else:
                found += dashboard_expressions(value)
    elif isinstance(node, list):
        for item in node:
            found += dashboard_expressions(item)
    return found


def test_the_name_extraction_finds_metrics_and_nothing_else() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, endpoint) (rate(panacea_request_duration_seconds"
        '_bucket{instance=~"$instance", le="1.0"}[$__rate_interval]))) / on (endpoint) '
        "group_left panacea_users or vector(0)"
    )
    assert metric_names(expr) == {"panacea_request_duration_seconds_bucket", "panacea_users"}
    assert metric_names("label_values(panacea_run_info, instance)") == {"panacea_run_info"}


def test_every_dashboard_expression_names_only_served_metrics(
    exporter_of: Callable[..., tuple[PanaceaRun, PrometheusExporter]], tmp_path: Path
) -> None:
    run, exporter = exporter_of(user_classes=[Idle])
    write_slo(tmp_path, "[total]\nmax_failure_ratio = 0.0\n", run)
    fire(run, INFO, 3.0)
    fire(run, INFO, 3.0, CatchResponseError("HTTP 500"))
    families = scrape(exporter)  # every family has a series now
    served = {s.name for family in families.values() for s in family.samples}
    assert {f for f in FAMILIES if not values(families[f])} == set()

    dashboard = json.loads(DASHBOARD.read_text())
    expressions = dashboard_expressions(dashboard)
    assert len(expressions) >= 20
    used: set[str] = set()
    for expr in expressions:
        names = metric_names(expr)
        assert names, expr
        assert names <= served, f"{expr}: {names - served} not served"
        used |= names
    # ... and the check would see a metric the exporter does not serve
    assert metric_names("rate(panacea_request_total[5m])") - served == {"panacea_request_total"}
    # every family the exporter serves has a panel
    assert {f for f, family in families.items() if not used & {s.name for s in family.samples}} \
        == set()  # fmt: skip
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["gridPos"]["w"] > 0
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"


# --- a real Prometheus scraping a real run ----------------------------------------------------
def last(prom: PrometheusServer, metric: str, by: str) -> dict[str, float]:
    """The last value Prometheus holds of each series of ``metric``, summed ``by`` a label
    (a range selector: after the run, its series are stale, so an instant one finds none)."""
    return prom.values(f"sum by ({by}) (last_over_time({metric}[10m]))", by)


@pytest.mark.e2e
@pytest.mark.prometheus
def test_a_real_prometheus_scrapes_a_real_run(api: ReferenceAPIProcess, tmp_path: Path) -> None:
    """Prometheus scrapes a 5-second run every second; ``--prometheus-linger`` keeps /metrics
    up until one scrape after the results were written, so the last values Prometheus holds
    are the final ones, equal to summary.json's, not merely close."""
    from clickhouse_fixture import free_ports

    api.configure(error_rate=0.1)  # some failures, with their reasons
    prom_port, exporter_port = free_ports(2)
    target = f"127.0.0.1:{exporter_port}"
    with prometheus_server(tmp_path / "prometheus", target, port=prom_port) as prom:
        run = run_panacea(
            ["--host", api.url, "-u", "10", "-r", "10", "-t", "5s", "--quiet",
             "--target-version", "v-test-16", "--",
             "--prometheus-port", str(exporter_port), "--prometheus-linger", "15"],
            cwd=tmp_path,
            env=clean_env(HEAVY_WAIT_MIN="0.05", HEAVY_WAIT_MAX="0.1",
                          LIGHT_WAIT_MIN="0.2", LIGHT_WAIT_MAX="0.4"),
        )  # fmt: skip
        summary = run.summary()
        assert f"Prometheus metrics at http://{target}/metrics" in run.stderr
        # the exporter is gone once Prometheus has seen it down: its last good scrape is in
        deadline = time.monotonic() + 20
        while prom.values(f'up{{job="{JOB}"}}', "job") != {JOB: 0.0}:
            assert time.monotonic() < deadline, prom.log.read_text()[-2000:]
            time.sleep(0.3)
        # scraped while the run went on, not only at its end
        scrapes = prom.values(f'sum_over_time(up{{job="{JOB}"}}[10m])', "job")
        assert scrapes[JOB] >= 3

        requests = last(prom, "panacea_requests_total", "endpoint")
        assert set(requests) == set(ENDPOINT_NAMES)  # all twelve, with zeros
        assert sum(requests.values()) == summary["total"]["requests"] > 0
        endpoints = summary["endpoints"]
        for name in ENDPOINT_NAMES:
            block = endpoints.get(name, {"requests": 0, "failures": 0, "acceptable": {}})
            assert requests[name] == block["requests"], name
        outcomes = last(prom, "panacea_requests_total", "outcome")
        assert outcomes["failure"] == summary["total"]["failures"] > 0
        assert outcomes["acceptable"] == sum(summary["total"]["acceptable"].values())
        reasons = prom.query("sum by (endpoint, reason) "
                             "(last_over_time(panacea_failures_total[10m]))")  # fmt: skip
        served_reasons = {(r["metric"]["endpoint"], r["metric"]["reason"]): float(r["value"][1])
                          for r in reasons}  # fmt: skip
        assert served_reasons == {
            (name, reason): n
            for name, block in endpoints.items()
            for reason, n in block["failures_by_reason"].items()
        }
        counts = last(prom, "panacea_request_duration_seconds_count", "endpoint")
        sums = last(prom, "panacea_request_duration_seconds_sum", "endpoint")
        infs = last(prom, 'panacea_request_duration_seconds_bucket{le="+Inf"}', "endpoint")
        for name, block in endpoints.items():
            answered = block["requests"] - block["failures"]
            assert counts[name] == infs[name] == answered, name
            if answered:
                assert sums[name] / answered * 1000 == pytest.approx(block["mean_ms"], abs=1e-3)
        # the users at their peak, each rule as judged at the end, the run's labels
        users = prom.values("max_over_time(panacea_users[10m])", "user_type")
        assert {k: v for k, v in users.items() if v} == summary["run"]["users"]
        # as of the last good scrape: a rule judged during the run may have had too few
        # samples at its end (no series then), which last_over_time would not show
        (up,) = prom.query(f'up{{job="{JOB}"}}[10m]')
        last_scrape = max(float(at) for at, value in up["values"] if value == "1")
        rules = prom.query("panacea_slo_rule_passing", at=last_scrape)
        served_rules = {(r["metric"]["scope"], r["metric"]["metric"]): float(r["value"][1])
                        for r in rules}  # fmt: skip
        judged = {
            (r["scope"], r["metric"]): 1.0 if r["status"] == "pass" else 0.0
            for r in summary["thresholds"]["rules"]
            if r["status"] != "insufficient"
        }
        assert judged and served_rules == judged
        info = prom.query("last_over_time(panacea_run_info[10m])")
        assert [{k: i["metric"][k] for k in ("label", "host", "target_version")}
                for i in info] == [{"label": "run", "host": api.url,
                                    "target_version": "v-test-16"}]  # fmt: skip
        cpu = prom.values("last_over_time(panacea_load_generator_cpu_percent[10m])", "process")
        assert list(cpu) == ["local"]
