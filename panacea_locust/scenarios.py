"""The shipped scenarios (``scenarios/<name>.conf``) and the default thresholds file: where
``panacea-locust run --scenario`` and the web UI's start form find them.

A scenario file is a Locust ``--config`` file (``key = value`` lines); both read it here, so
a scenario means the same thing wherever it is picked. Pure: no Locust.
"""

from __future__ import annotations

from pathlib import Path

import panacea_locust

PACKAGE_DIR = Path(panacea_locust.__file__).resolve().parent
SCENARIOS = ("smoke", "load", "stress", "analytics", "capacity")


def scenario_path(name: str) -> Path:
    """``scenarios/<name>.conf`` from the working directory, else from the source checkout."""
    for root in (Path.cwd(), PACKAGE_DIR.parent):
        candidate = root / "scenarios" / f"{name}.conf"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no scenario file scenarios/{name}.conf (known: {', '.join(SCENARIOS)})"
    )


def scenario_options(conf: Path) -> dict[str, str]:
    """The ``key = value`` settings of a scenario file (comments and blank lines left out)."""
    options: dict[str, str] = {}
    for line in conf.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip() and value.strip():
            options[key.strip()] = value.strip()
    return options


def scenario_slo(conf: Path | None) -> Path | None:
    """The ``slo-file`` a scenario file names (each scenario judges what its run time can
    measure), relative to the checkout the scenario file belongs to; None if it names none."""
    if conf is None:
        return None
    value = scenario_options(conf).get("slo-file")
    return conf.resolve().parent.parent / value if value else None


def default_slo() -> Path | None:
    """``./slo.toml`` if present, else the one shipped with the source checkout."""
    for root in (Path.cwd(), PACKAGE_DIR.parent):
        if (root / "slo.toml").is_file():
            return root / "slo.toml"
    return None
