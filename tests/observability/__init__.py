"""Observability tests (metrics, scrape, logs, heartbeat); a package so its conftest does not shadow tests/python's."""
