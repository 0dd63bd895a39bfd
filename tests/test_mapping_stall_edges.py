"""DRAM stalls of a single-tile op: the first fold's load is paid once (reuse._stall), by hand.

On ZigZag's tpu_like translation (8 bytes/cycle DRAM, 2 MiB SRAM for activations and outputs, weights
streamed to per-PE registers) a 1x1 conv C = 64 -> K = 16 on a 55 x 55 map (SqueezeNet 1.1's first
squeeze layer) keeps its whole input and output on chip as one tile. Its DRAM traffic is
64*55*55 input + 64*16 weights + 16*55*55 output = 243,024 bytes = 30,378 cycles at 8 B/cycle, five
times its compute (2 row folds x 3025 steps): the op is bandwidth-bound and costs exactly its bytes over
the bandwidth. (Counting the first fold's half of the input both as the start-up edge and in the input
buffer's own load-vs-lifetime term gave 42,414.)
"""

from pathlib import Path

from simulator import load_arch, simulate
from simulator.trace import trace_from_dict

SPEC = Path(__file__).resolve().parents[1] / "arch_configs" / "zigzag_tpu_like.yaml"


def test_single_tile_bandwidth_bound_conv_costs_its_bytes_over_the_bandwidth():
    dims = {"N": 1, "C": 64, "H": 55, "W": 55, "K": 16, "R": 1, "S": 1, "stride": 1, "pad": 0}
    trace = trace_from_dict({"schema_version": 1, "name": "t", "ops": [{"name": "squeeze", "kind": "conv2d",
                                                                       "dims": dims}]})
    row = simulate(trace, load_arch(SPEC)).rows[0]
    dram = 64 * 55 * 55 + 64 * 16 + 16 * 55 * 55
    assert row["dram_read_bytes"] + row["dram_write_bytes"] == dram
    assert row["compute_cycles"] < dram / 8
    assert row["cycles"] == dram / 8
    assert "bandwidth-bound" in row["notes"]
