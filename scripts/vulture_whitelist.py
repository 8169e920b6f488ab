"""Names the dead-code check (vulture, ``make lint``) must not report: each is used, but by a
framework's convention or from outside the package, where vulture cannot see it. Reviewed:
add a name here only with the reason, and prefer deleting code that nothing uses."""

# ruff: noqa: B018, F401, F821

from bench.locustfiles.bare_fasthttp import BareFastHttpUser
from bench.locustfiles.bare_httpuser import BareHttpUser
from panacea_locust.reference_api.launcher import ReferenceAPIProcess, contract_headers
from panacea_locust.user_types import AnalyticsUser, HeavyUser, LightUser

# Locust finds user classes and a LoadShape in the locustfile's namespace and reads these
# class attributes (abstract, wait_time, tasks, the timeouts, on_start) itself.
AnalyticsUser, HeavyUser, LightUser, BareFastHttpUser, BareHttpUser
_.abstract
_.wait_time
_.tasks
_.network_timeout
_.connection_timeout
_.on_start
_.LoadShape
_.process_exit_code  # Locust exits with Environment.process_exit_code
_.exceptions  # the bench meter clears Runner.exceptions as the web UI's Reset Stats does

# pydantic reads model_config; Settings fields are filled from environment variables by name
# (the endpoint <KEY>_PATH/<KEY>_WEIGHT and CLICKHOUSE_* names are listed in pyproject's
# [tool.vulture] ignore_names); response-model fields exist for the OpenAPI document.
_.model_config
_.total_lines
_.fatal
_.warn
_.buckets
_.cvm_ip
_.generated_at

# The launcher is the reference API's documented Python API for users' own tests
# (docs/reference-api.md): starting it, building contract headers, changing its behaviour.
ReferenceAPIProcess.configure
contract_headers

# hdrh's encoder reads these attributes of the HdrHistogram the payload is built in.
_.total_count
_.max_value

# pytest must not collect a class whose name starts with Test
_.__test__

# Locust's parser reads these marks on an option to show it in the web UI's start form
# (event_handlers._in_web_ui sets them on options added through an argument group).
_.include_in_web_ui
_.is_secret
_.is_required
_.is_multiple

# summary.json's stable top-level keys: the contract other tools (and its tests) rely on
STABLE_KEYS
