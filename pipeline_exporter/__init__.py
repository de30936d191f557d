"""Prometheus exporter for the 333 Method outreach pipeline database."""

__version__ = "0.1.0"
