"""Shared test helpers: repo paths and small builders."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCH_DIR = ROOT / "arch_configs"
TRACE_DIR = ROOT / "workloads" / "traces"


@pytest.fixture
def root() -> Path:
    return ROOT
