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


def edge_npu_with_accumulator() -> dict:
    """The shipped edge NPU's spec (a dict) with its 512 KiB re-partitioned into a 448 KiB operand SRAM
    (128 B/cycle) and a 64 KiB accumulator level holding outputs (256 B/cycle): the layout of a spec
    that declares a separate accumulator (Gemmini's 32x32-mesh accumulator size)."""
    import yaml
    spec = yaml.safe_load((ARCH_DIR / "edge_npu_32x32_os.yaml").read_text())
    spec["memory"] = {"acc": {"kind": "sram", "capacity_kib": 64, "bandwidth_bytes_per_cycle": 256, "holds": ["outputs"]},
                      "sram": {"kind": "sram", "capacity_kib": 448, "bandwidth_bytes_per_cycle": 128,
                               "holds": ["activations", "weights"]},
                      "lpddr4": spec["memory"]["lpddr4"]}
    return spec
