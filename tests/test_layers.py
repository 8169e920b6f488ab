"""The package's layers, checked: what may import what.

- The pure parts (settings, contract, payloads, database access, verdicts, reports) never load
  Locust or gevent: gevent patches the standard library when imported, and these parts run in
  commands (results, compare, db) and tests that must stay plain Python.
- The reference API stands in for the real service, so it shares nothing with the client under
  test but the contract: of ``panacea_locust`` it may import ``panacea_locust.contract``, its own
  modules and the package itself (for ``__version__``).
- The contract is neutral data: no Locust, gevent, pydantic or FastAPI.
- No loop of imports between the package's modules (an import inside a function counts): the
  users find their run through ``run_context``, not through the listeners that create it.

Each rule is checked in a fresh interpreter (what an import really loads) and, for the reference
API, statically too (an import in a branch not taken still counts). Each check also proves it
can fail, on a planted forbidden import.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from panacea_locust.config import environment_without_settings

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_API = ROOT / "panacea_locust" / "reference_api"
PURE = (
    "panacea_locust.config",
    "panacea_locust.contract",
    "panacea_locust.run_context",
    "panacea_locust.payload_generator",
    "panacea_locust.clickhouse_dao",
    "panacea_locust.verdict.histogram",
    "panacea_locust.verdict.tally",
    "panacea_locust.verdict.results",
    "panacea_locust.verdict.thresholds",
    "panacea_locust.verdict.compare",
    "panacea_locust.verdict.health",
    "panacea_locust.verdict.decision",
    "panacea_locust.verdict.timeline",
    "panacea_locust.verdict.stages",
    "panacea_locust.verdict.history",
    "panacea_locust.verdict.traces",
    "panacea_locust.open_model.schedule",
    "panacea_locust.verdict.workload",
    "panacea_locust.secrets",
    "panacea_locust.target_guard",
    "panacea_locust.cost_guard",
    "panacea_locust.run_secret",
    "panacea_locust.pool_transfer",
    "panacea_locust.scenarios",
    "panacea_locust.web_ui.panel",
    "panacea_locust.report.junit",
    "panacea_locust.report.history",
    "panacea_locust.observability.metrics",
    "panacea_locust.report.summary",
    "panacea_locust.report.thresholds",
    "panacea_locust.report.compare",
    "panacea_locust.report.stages",
    "panacea_locust.report.html",
    "panacea_locust.report.svg",
)
REFERENCE_ENTRY_POINTS = (
    "panacea_locust.reference_api.app",
    "panacea_locust.reference_api.server",
    "panacea_locust.reference_api.engine",
    "panacea_locust.reference_api.launcher",
)
_PROBE = (
    "import importlib, json, sys\n"
    "for name in sys.argv[1:]:\n"
    "    importlib.import_module(name)\n"
    "print(json.dumps(sorted(sys.modules)))\n"
)


def modules_after_importing(*names: str) -> list[str]:
    """Every module a fresh interpreter holds after importing ``names`` (nothing else run)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *names],
        cwd=ROOT,
        env=environment_without_settings(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout)
    return modules


def of_packages(modules: list[str], *tops: str) -> list[str]:
    """The modules in ``modules`` that are one of the top-level packages ``tops`` or inside it."""
    return [m for m in modules if m.split(".", 1)[0] in tops]


# --- (1) the pure parts load neither Locust nor gevent ---------------------------------------


def test_pure_parts_load_neither_locust_nor_gevent() -> None:
    loaded = modules_after_importing(*PURE)
    assert set(PURE) <= set(loaded)
    assert of_packages(loaded, "locust", "gevent") == []


def test_the_contract_is_neutral_data() -> None:
    loaded = modules_after_importing("panacea_locust.contract")
    assert of_packages(loaded, "locust", "gevent", "pydantic", "fastapi", "starlette") == []
    assert [m for m in loaded if m.startswith("panacea_locust")] == [
        "panacea_locust",
        "panacea_locust.contract",
    ]


def test_the_locust_check_can_fail() -> None:
    loaded = modules_after_importing("panacea_locust.contract", "gevent")
    assert "gevent" in of_packages(loaded, "locust", "gevent")


# --- (2) the reference API reaches only the contract -----------------------------------------


def allowed_for_reference_api(module: str) -> bool:
    """May the reference API import ``module`` (a full dotted name) of panacea_locust?"""
    parts = module.split(".")
    if parts[0] != "panacea_locust":
        return True  # third-party and stdlib: not this test's business
    return len(parts) == 1 or parts[1] in ("contract", "reference_api")


def forbidden_imports(source: str, module: str) -> list[str]:
    """The panacea_locust modules that ``source`` (the text of ``module``) imports, but that
    the reference API must not; relative imports are resolved against ``module``."""
    is_package = module.endswith(".__init__")
    module = module.removesuffix(".__init__")
    package = module if is_package else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                where = f"{base}.{node.module}" if node.module else base
            else:
                where = node.module or ""
            # ``from X import name``: name may be a submodule of X, or an attribute of X
            targets = [where]
            for alias in node.names:
                if where == "panacea_locust" and alias.name == "__version__":
                    continue
                if where == "panacea_locust" or node.module is None:
                    targets.append(f"{where}.{alias.name}")
        found += [t for t in targets if not allowed_for_reference_api(t)]
    return found


def test_reference_api_sources_import_only_the_contract() -> None:
    files = sorted(REFERENCE_API.rglob("*.py"))
    assert len(files) >= 10
    bad: dict[str, list[str]] = {}
    for path in files:
        rel = path.relative_to(ROOT).with_suffix("")
        found = forbidden_imports(path.read_text(encoding="utf-8"), ".".join(rel.parts))
        if found:
            bad[str(path.relative_to(ROOT))] = found
    assert bad == {}


def test_the_static_check_can_fail() -> None:
    planted = (
        "import panacea_locust.config\n"
        "from panacea_locust.payload_generator import UserPool\n"
        "from panacea_locust import clickhouse_dao, __version__\n"
        "from .. import user_index\n"
        "from ..contract import ENDPOINTS\n"
        "from . import engine\n"
        "if False:\n"
        "    from ..base_user import PanaceaUser\n"
    )
    found = forbidden_imports(planted, "panacea_locust.reference_api.engine")
    assert found == [
        "panacea_locust.config",
        "panacea_locust.payload_generator",
        "panacea_locust.clickhouse_dao",
        "panacea_locust.user_index",
        "panacea_locust.base_user",
    ]
    assert forbidden_imports("from . import config\n", "panacea_locust.__init__") == [
        "panacea_locust.config"
    ]


def test_reference_api_loads_only_the_contract() -> None:
    loaded = modules_after_importing(*REFERENCE_ENTRY_POINTS)
    assert set(REFERENCE_ENTRY_POINTS) <= set(loaded)
    ours = [m for m in loaded if m.split(".", 1)[0] == "panacea_locust"]
    assert [m for m in ours if not allowed_for_reference_api(m)] == []


def test_the_dynamic_check_can_fail() -> None:
    loaded = modules_after_importing(*REFERENCE_ENTRY_POINTS, "panacea_locust.config")
    ours = [m for m in loaded if m.split(".", 1)[0] == "panacea_locust"]
    assert "panacea_locust.config" in [m for m in ours if not allowed_for_reference_api(m)]


def package_imports(root: Path = ROOT / "panacea_locust") -> dict[str, set[str]]:
    """Module -> the package's modules it imports, anywhere in its source (static)."""
    modules = {
        ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in root.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name and m != "panacea_locust"}
    return graph


def import_loop(graph: dict[str, set[str]]) -> list[str] | None:
    """One loop of imports in ``graph`` (its modules in order), or None."""
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (loop := walk(nxt)):
                return loop
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (loop := walk(node)):
            return loop
    return None


def test_no_loop_of_imports_between_the_packages_modules() -> None:
    graph = package_imports()
    assert "panacea_locust.run_context" in graph["panacea_locust.base_user"]  # it reads them
    assert import_loop(graph) is None, " -> ".join(import_loop(graph) or [])


def test_the_loop_check_can_fail() -> None:
    graph = package_imports()
    graph["panacea_locust.base_user"].add("panacea_locust.event_handlers")  # as it once was
    loop = import_loop(graph)
    assert loop is not None and loop[0] == loop[-1], loop
    assert "panacea_locust.base_user" in loop and "panacea_locust.event_handlers" in loop
