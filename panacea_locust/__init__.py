"""panacea-locust: load testing for the Panacea API insights endpoints, built on Locust."""

__version__ = "1.0.0"
