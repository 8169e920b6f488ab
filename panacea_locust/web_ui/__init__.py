"""Panacea in Locust's web UI: the start form's fields, the Panacea tab, the run's reports.

``panel.py`` is the pure part (what the tab shows, what the form accepts, which runs there
are); ``app.py`` binds it to one Environment's web UI, in the ways Locust documents for
extending it (custom arguments, ``extended_tabs`` fed through ``extended_stats``,
``extended_csv_files``, Flask routes on ``web_ui.app``).
"""
