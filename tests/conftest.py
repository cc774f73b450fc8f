"""Loads the shared fixtures (tests/fixtures/) as plugins and fails tests that leak tasks or threads."""

from __future__ import annotations

import os

# Before any event loop exists: loops read it when they are created (slow callbacks get logged).
os.environ["PYTHONASYNCIODEBUG"] = "1"

pytest_plugins = [
    "tests.fixtures.health",
    "tests.fixtures.cabinet",
    "tests.fixtures.camera",
    "tests.fixtures.domain",
    "tests.fixtures.door_rig",
    "tests.fixtures.oplog",
    "tests.fixtures.raw_rig",
    "tests.fixtures.sync",
]
