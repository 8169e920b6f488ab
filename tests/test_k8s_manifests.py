"""The Kubernetes manifests parse, and the commands they give Locust are ones it accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((ROOT / "k8s" / name).read_text()) if d]


def _container(name: str) -> dict:
    (deployment,) = [d for d in _documents(name) if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("manifest", ["master.yaml", "worker.yaml"])
def test_locust_accepts_the_manifest_command(manifest: str) -> None:
    args = [a.replace("/app/", f"{ROOT}/") for a in _container(manifest)["args"]]
    probe = (
        "import sys\n"
        "import panacea_locust.event_handlers  # registers our options with Locust's parser\n"
        "from locust.argument_parser import parse_options\n"
        "options = parse_options(sys.argv[1:])\n"
        "print(options.master, options.worker, options.num_users)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    master, worker, users = proc.stdout.split()[-3:]
    assert (master, worker) == (
        ("True", "False") if manifest == "master.yaml" else ("False", "True")
    )
    assert users == "25"  # from scenarios/load.conf


def test_worker_points_at_the_master_service() -> None:
    (service,) = [d for d in _documents("master.yaml") if d["kind"] == "Service"]
    args = _container("worker.yaml")["args"]
    assert args[args.index("--master-host") + 1] == service["metadata"]["name"]
    ports = {p["port"] for p in service["spec"]["ports"]}
    assert int(args[args.index("--master-port") + 1]) in ports


def test_no_real_host_or_secret_in_the_config_map() -> None:
    (config,) = _documents("configmap.yaml")
    assert config["data"]["PANACEA_HOST"] == ""
    assert "CLICKHOUSE_PASSWORD" not in config["data"]
