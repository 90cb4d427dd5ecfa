"""Shared test support: repository paths, running the entry points, small fixtures and servers.

Tests import from here (``from tests.helpers.cli import run_cli``) instead of from ``conftest.py``, which
only declares pytest fixtures.
"""
