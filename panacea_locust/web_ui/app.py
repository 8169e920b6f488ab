"""The Panacea tab, the start form's checks and the run's reports, on one Environment's
Locust web UI.

Locust's documented extension points only: ``extended_tabs`` / ``extended_tables`` with
their rows delivered as ``extended_stats`` in ``/stats/requests`` (polled every 2 s while a
test runs), ``extended_csv_files`` for the links of the Download Data tab, and Flask hooks
and routes on ``web_ui.app`` (behind Locust's own login when ``--web-login`` is on). A bad
start form is answered as Locust answers its own bad fields (``success: false`` and a
message the page shows), before Locust reads it, so no run starts and no option changes.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from flask import Response, abort, jsonify, redirect, request, send_file

from panacea_locust.scenarios import SCENARIOS
from panacea_locust.target_guard import TargetRefused, check_target
from panacea_locust.verdict.thresholds import SLOError
from panacea_locust.web_ui.panel import COLUMNS, REPORT_FILES, TAB_KEY, form_error, panel_rows
from panacea_locust.web_ui.panel import safe_report as find_report

if TYPE_CHECKING:
    from locust.env import Environment
    from locust.web import WebUI

    from panacea_locust.run_context import RunContext

logger = logging.getLogger("panacea_locust")
#: the tab's rows are rebuilt at most this often (a snapshot judges every rule)
SNAPSHOT_S = 1.0
#: the Download Data tab's links: each goes to the latest run's file, by its run id
LINKS = (("summary.html", "Panacea summary (HTML)"), ("summary.md", "Panacea summary (Markdown)"),
         ("summary.json", "Panacea summary.json"), ("junit.xml", "Panacea junit.xml"),
         ("compare.html", "Panacea comparison with the baseline (HTML)"))  # fmt: skip


class Run(Protocol):
    """What the web UI needs of a run (``event_handlers.PanaceaRun`` is one): named here, so
    this module does not import the listeners that create it."""

    environment: Environment
    context: RunContext
    state: Any  #: ``final`` (the written summary) and ``run_dir``

    def web_ui_slo(self, slo_file: str, scenario: str) -> tuple[str | None, Any]: ...

    def web_ui_snapshot(self) -> dict[str, Any]: ...

    def results_root(self) -> str: ...


class PanaceaWebUI:
    """The web UI's Panacea parts, for the run of one Environment."""

    def __init__(self, run: Run, web_ui: WebUI) -> None:
        self.run, self.web_ui = run, web_ui
        self._rows: list[dict[str, str]] = []
        self._rows_at = 0.0
        self._final: object = None  #: the written summary the rows last showed
        args = web_ui.template_args
        args["extended_tabs"] = [{"title": "Panacea", "key": TAB_KEY}]
        args["extended_tables"] = [
            {"key": TAB_KEY, "structure": [{"key": k, "title": t} for k, t in COLUMNS]}
        ]
        args["extended_csv_files"] = [
            {"href": f"./panacea/latest/{name}", "title": title} for name, title in LINKS
        ]
        app = web_ui.app
        assert app is not None  # a WebUI always has its Flask app
        app.before_request(self._check_start_form)
        app.after_request(self._add_panel)
        login = web_ui.auth_required_if_enabled
        # beside Locust's pages: under its --web-base-path, where the page's relative links go
        options = run.environment.parsed_options
        base = (getattr(options, "web_base_path", None) or "").rstrip("/")
        app.add_url_rule(f"{base}/panacea/runs/<run_id>/<name>", "panacea_report",
                         login(self._report))  # fmt: skip
        app.add_url_rule(f"{base}/panacea/latest/<name>", "panacea_latest", login(self._latest))
        app.add_url_rule(f"{base}/panacea/status.json", "panacea_status", login(self._status))

    # --- the start form --------------------------------------------------------------------
    def _check_start_form(self) -> Response | None:
        if request.endpoint != "locust.swarm" or request.method != "POST":
            return None
        error = self.form_problem(request.form)
        if error is None:
            return None
        logger.error("panacea-locust: the start form was refused: %s", error)
        host = self.run.environment.host
        return jsonify({"success": False, "message": error, "host": host})

    def form_problem(self, form: Any) -> str | None:
        """What is wrong with a start form, as the command line would say it, else None."""
        run, settings = self.run, self.run.context.settings
        error = form_error(form, SCENARIOS, settings.locust_max_users)
        if error:
            return error
        try:
            run.web_ui_slo(form.get("slo_file", "").strip(), form.get("scenario", "").strip())
        except (SLOError, OSError) as err:
            return str(err).splitlines()[0]
        if "host" in form and not str(form["host"]).strip():
            return "Host is empty: give the API's base URL, e.g. http://127.0.0.1:8000"
        host = str(form.get("host", "") or run.environment.host or "").rstrip("/")
        if host:
            users = int(form.get("user_count") or 1)
            try:
                check_target(host, settings.panacea_allowed_hosts, settings.panacea_protected_hosts,
                             "", users, settings.protected_max_users)  # fmt: skip
            except TargetRefused as err:
                return str(err)
        return None

    # --- the tab ---------------------------------------------------------------------------
    def _add_panel(self, response: Response) -> Response:
        if request.endpoint != "locust.request_stats" or response.status_code != 200:
            return response
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            body["extended_stats"] = [{"key": TAB_KEY, "data": self.rows()}]
            response.set_data(json.dumps(body))
        return response

    def rows(self) -> list[dict[str, str]]:
        now = time.monotonic()
        final = self.run.state.final
        if now - self._rows_at >= SNAPSHOT_S or not self._rows or final is not self._final:
            self._final = final  # the results were just written: show the verdict now
            self._rows = panel_rows(self.snapshot())
            self._rows_at = now
        return self._rows

    def snapshot(self) -> dict[str, Any]:
        """What the tab shows now; never raises (a failed snapshot shows as such)."""
        try:
            return self.run.web_ui_snapshot()
        except Exception as exc:  # pragma: no cover - the tab must not break the page
            logger.exception("panacea-locust: the Panacea tab could not be built")
            return {"state": f"(could not read the run: {type(exc).__name__})"}

    def _status(self) -> Response:
        self._rows_at = 0.0
        return jsonify({"rows": self.rows()})

    # --- the run's reports -----------------------------------------------------------------
    def _report(self, run_id: str, name: str) -> Response:
        path = find_report(Path(self.run.results_root()), run_id, name)
        if path is None:
            abort(404)
        mimetype = {"html": "text/html", "md": "text/markdown", "json": "application/json",
                    "xml": "application/xml"}[name.rsplit(".", 1)[1]]  # fmt: skip
        return send_file(path.resolve(), mimetype=mimetype)  # Flask: relative to its own root

    def _latest(self, name: str) -> Response:
        run_dir = self.run.state.run_dir
        if name not in REPORT_FILES or run_dir is None:
            abort(404)
        return redirect(f"../runs/{run_dir.name}/{name}")  # type: ignore[return-value]
