"""Shared test helpers: repo paths and small builders."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCH_DIR = ROOT / "arch_configs"
TRACE_DIR = ROOT / "workloads" / "traces"


@pytest.fixture
def root() -> Path:
    return ROOT


# Property tests explore new examples on every developer run; CI (SPARSIM_CI=1, set by .ci/run)
# replays a fixed, seeded set so a landing never depends on the luck of the draw.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
if __import__("os").environ.get("SPARSIM_CI"):
    settings.load_profile("ci")
