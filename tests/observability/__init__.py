"""Observability tests (issue 4); a package so its conftest does not shadow tests/python's."""
