"""The judgement of a run: latency histograms, the run's tally, summary.json, SLO rules, compare,
and whether the load generator was fit to measure. Pure: no Locust or gevent import here."""
