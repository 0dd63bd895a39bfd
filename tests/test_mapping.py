"""The mapping engine: search = brute force, compulsory traffic, conv halos, spatial unrollings, timing, errors."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import arch_from_dict, simulate
from simulator.mapping import reuse as rv
from simulator.mapping.cost import _params
from simulator.mapping.loopnest import LoopNest, Unrolling
from simulator.mapping.search import TILED, search
from simulator.mapping.spec import MappingSpec
from simulator.trace import Op, Trace

from cli_helpers import run_cli


def arch(dataflow="os", rows=4, cols=4, kib=1.0, dram_bpc=4.0, shared=True, mapping=None, extra=None):
    memory = {"sram": {"capacity_kib": kib, "bandwidth_bytes_per_cycle": 64}} if shared else {
        "ibuf": {"capacity_kib": kib, "ideal": True, "holds": ["activations"]},
        "wbuf": {"capacity_kib": kib, "ideal": True, "holds": ["weights"]},
        "obuf": {"capacity_kib": kib, "ideal": True, "holds": ["outputs"]}}
    memory.update(extra or {})
    memory["dram"] = {"kind": "dram", "bandwidth_bytes_per_cycle": dram_bpc}
    compute = {"kind": "systolic", "rows": rows, "cols": cols, "dataflow": dataflow}
    if mapping:
        compute["mapping"] = mapping
    return arch_from_dict({"clock_mhz": 1000, "compute": compute, "memory": memory})


def params_for(a, nest, compute=5000.0, objective="latency", byte=None):
    mapping = MappingSpec(objective=objective)
    unroll = Unrolling(*{"os": (("N", "P", "Q"), ("K",)), "ws": (("C", "R", "S"), ("K",)),
                         "is": (("C", "R", "S"), ("N", "P", "Q"))}[a.compute.dataflow], a.compute.rows, a.compute.cols)
    names = list(a.memory)
    byte = byte or {x: {n: 1.0 for n in names} for x in ("activations", "weights", "outputs")}
    p, _ = _params(a, nest, unroll, compute, byte, 4.0, mapping, unroll.array_demand(nest))
    return p, unroll


def _better(a, b, tie=1e-9):
    """(objective, bytes, energy) a beats b, values within a relative 1e-9 counting as equal."""
    for x, y in zip(a, b):
        if x < y * (1 - tie):
            return True
        if x > y * (1 + tie):
            return False
    return False


def brute_force(nest, unroll, p):
    """Every legal mapping: every tile size that is a multiple of the dim's granule (or the whole dim),
    under every one of the 6 orders; the best by (objective, DRAM bytes, energy)."""
    sizes = [sorted({*range(unroll.granule(nest, d), nest.size(d) + 1, unroll.granule(nest, d)), nest.size(d)})
             for d in TILED]
    out = np.zeros(rv.N_OUT)
    best = None
    for t in itertools.product(*sizes):
        for o in range(6):
            rv.evaluate(np.array(t, dtype=float), o, p, out)
            if out[0] == 1.0:
                key = (out[8], out[1] + out[2] + out[3] + out[4], out[7])
                best = key if best is None or _better(key, best) else best
    return best


NESTS = [LoopNest(G=1, N=1, K=12, C=20, P=10, Q=1),                                         # GEMM 10x12x20
         LoopNest(G=2, N=1, K=6, C=9, P=7, Q=1),                                            # two GEMMs
         LoopNest(G=1, N=1, K=8, C=3, P=6, Q=5, R=3, S=3, stride=2, H=13, W=11, gemm=False),  # strided conv
         LoopNest(G=4, N=1, K=1, C=1, P=6, Q=6, R=3, S=3, stride=1, H=8, W=8, gemm=False)]    # depthwise


@pytest.mark.parametrize("nest", NESTS, ids=["gemm", "batched", "conv", "depthwise"])
@pytest.mark.parametrize("dataflow, kib, objective", [("os", 0.25, "latency"), ("ws", 0.5, "energy"),
                                                      ("is", 0.2, "edp"), ("os", 0.1, "latency")])
def test_search_finds_the_brute_force_optimum(nest, dataflow, kib, objective):
    a = arch(dataflow, kib=kib, dram_bpc=0.5)
    p, unroll = params_for(a, nest, objective=objective)
    choice = search({d: nest.size(d) for d in TILED}, {d: unroll.granule(nest, d) for d in TILED}, {}, p)
    best = brute_force(nest, unroll, p)
    if best is None:
        assert choice is None
        return
    s = choice.stats
    assert s["objective"] == pytest.approx(best[0], rel=1e-9)
    assert s["read_input"] + s["read_weights"] + s["read_outputs"] + s["write_outputs"] == pytest.approx(best[1], rel=1e-9)
    assert s["energy_pj"] == pytest.approx(best[2], rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 80), N=st.integers(1, 80), K=st.integers(1, 300), kib=st.floats(0.1, 64),
       dataflow=st.sampled_from(["os", "ws", "is"]))
def test_dram_traffic_never_below_the_compulsory_bytes(M, N, K, kib, dataflow):
    row = simulate(Trace(ops=[Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K})]),
                   arch(dataflow, rows=8, cols=8, kib=kib)).rows[0]
    assert row["dram_read_bytes"] >= M * K + K * N - 1e-6
    assert row["dram_write_bytes"] >= M * N - 1e-6


def conv(C=8, H=16, W=16, K=16, R=3, S=3, stride=1, pad=0, groups=1):
    return Trace(ops=[Op(name="c", kind="conv2d", dims={"C": C, "H": H, "W": W, "K": K, "R": R, "S": S,
                                                         "stride": stride, "pad": pad, "groups": groups})])


def test_a_conv_reads_its_feature_map_not_the_im2col_matrix():
    # 3x3 conv, 8 x 16 x 16 input (2 KiB) that fits: read once, where im2col would move 9x as much.
    row = simulate(conv(), arch("os", rows=8, cols=8, kib=64)).rows[0]
    assert row["dram_read_bytes"] == 8 * 16 * 16 + 16 * 8 * 9
    assert row["dram_write_bytes"] == 16 * 14 * 14


def test_conv_tiles_of_output_rows_reread_only_their_halo():
    # Pin P to tiles of 7 output rows (14 = 2 tiles) and everything else whole: each tile reads
    # (7 - 1) * 1 + 3 = 9 input rows, so 18 of the 16 input rows, once per the two tiles.
    mapping = {"tiles": {"P": 7, "Q": 14, "K": 16, "C": 8}}
    row = simulate(conv(), arch("os", rows=8, cols=8, kib=64, mapping=mapping)).rows[0]
    assert "P7" in row["mapping"]
    assert row["dram_read_bytes"] == 8 * 18 * 16 + 16 * 8 * 9


def test_strided_conv_halo_by_hand():
    from simulator.mapping.reuse import _halo_sum
    # 11 output rows, stride 2, R = 3: tiles of 4, 4, 3 rows touch (4-1)*2+3 = 9, 9 and (3-1)*2+3 = 7 input rows.
    assert _halo_sum(11.0, 4.0, 2.0, 3.0, 23.0) == 9 + 9 + 7
    # 1x1 stride 2 (R < stride) touches only every other row: 4 rows per tile of 4.
    assert _halo_sum(11.0, 4.0, 2.0, 1.0, 21.0) == 11


def test_depthwise_conv_reads_each_group_once():
    row = simulate(conv(C=16, K=16, groups=16), arch("os", rows=8, cols=8, kib=64)).rows[0]
    assert row["dram_read_bytes"] == 16 * 16 * 16 + 16 * 9
    assert row["dram_write_bytes"] == 16 * 14 * 14


def test_presets_keep_scalesim_compute_and_pipelined_drops_the_fill_of_all_folds_but_one():
    trace = Trace(ops=[Op(name="g", kind="gemm", dims={"M": 100, "N": 70, "K": 50})])
    exact = simulate(trace, arch("os", rows=32, cols=32, kib=256)).rows[0]
    folds = 4 * 3
    assert exact["compute_cycles"] == folds * (32 + 32 + 50 - 2) - 1
    piped = simulate(trace, arch("os", rows=32, cols=32, kib=256, mapping={"timing": "pipelined"})).rows[0]
    assert piped["compute_cycles"] == exact["compute_cycles"] - (folds - 1) * (32 + 32 - 2)
    assert "pipelined timing" in piped["model"]


def test_explicit_unrolling_counts_folds_and_streams_by_hand():
    # rows <- C, cols <- K for a 3-channel 7x7/2 stem: C=3 uses 3 of 32 rows, K=64 takes 2 column folds,
    # and N*P*Q*R*S = 112*112*49 steps stream through each fold; one fill+drain (62) when pipelined.
    trace = conv(C=3, H=229, W=229, K=64, R=7, S=7, stride=2)
    spatial = {"spatial": {"rows": ["C"], "cols": ["K"]}}
    a = arch("ws", rows=32, cols=32, kib=4096, mapping=spatial | {"timing": "pipelined"})
    row = simulate(trace, a).rows[0]
    assert row["compute_cycles"] == 2 * 112 * 112 * 49 + 62 - 1
    per_fold = simulate(trace, arch("ws", rows=32, cols=32, kib=4096, mapping=spatial)).rows[0]
    assert per_fold["compute_cycles"] == 2 * (112 * 112 * 49 + 62) - 1


def test_per_pe_registers_are_read_once_per_mac_and_filled_with_what_the_array_feeds():
    regs = {"pe": {"kind": "rf", "per_pe": True, "capacity_kib": 0.0625, "ideal": True, "holds": ["weights", "outputs"]}}
    M, N, K = 16, 16, 64
    row = simulate(Trace(ops=[Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K})]),
                   arch("ws", rows=8, cols=8, kib=64, extra=regs)).rows[0]
    macs = M * N * K
    assert row["pe_read_bytes"] == macs * 1 + macs * 4           # a weight byte and a 32-bit psum per MAC
    assert row["pe_write_bytes"] == K * N + macs * 4             # WS feeds each weight once; psum per MAC
    # 64 weight bytes per PE hold all 8 reduction folds: partial sums never round-trip through the SRAM.
    assert row["sram_write_bytes"] == pytest.approx(M * K + K * N + M * N)


@settings(max_examples=40, deadline=None)
@given(density=st.floats(0.05, 1.0), fmt=st.sampled_from(["bitmap", "csr", "rle", "coo"]),
       kib=st.floats(0.2, 8), dataflow=st.sampled_from(["os", "ws", "is"]))
def test_a_sparse_operand_never_costs_more_traffic_than_dense_in_the_same_mapping(density, fmt, kib, dataflow):
    from simulator.formats import bits_per_element
    from simulator.trace import Sparsity
    nest = NESTS[0]
    a = arch(dataflow, kib=kib)
    _, unroll = params_for(a, nest)
    # The dense form: the same operand at density 1 in the same format (formats never shrink with density).
    sparse_bits = bits_per_element(Sparsity(kind="unstructured", density=density), fmt, 8, row_len=20)
    dense_bits = bits_per_element(Sparsity(kind="unstructured", density=1.0), fmt, 8, row_len=20)
    dense_byte = {x: {n: (dense_bits / 8 if x == "weights" else 1.0) for n in a.memory}
                  for x in ("activations", "weights", "outputs")}
    dense_p, _ = params_for(a, nest, byte=dense_byte)
    sparse_byte = {x: {n: (sparse_bits / 8 if x == "weights" else 1.0) for n in a.memory}
                   for x in ("activations", "weights", "outputs")}
    sparse_p, _ = params_for(a, nest, byte=sparse_byte)
    choice = search({d: nest.size(d) for d in TILED}, {d: unroll.granule(nest, d) for d in TILED}, {}, dense_p)
    if choice is None:
        return
    t = np.array([choice.tiles[d] for d in TILED], dtype=float)
    for o in range(6):
        d_out, s_out = np.zeros(rv.N_OUT), np.zeros(rv.N_OUT)
        rv.evaluate(t, o, dense_p, d_out)
        rv.evaluate(t, o, sparse_p, s_out)
        if s_out[0]:
            assert s_out[1:5].sum() <= d_out[1:5].sum() + 1e-9


def test_compare_never_beats_the_2to4_cap_on_a_compute_bound_gemm(capsys, tmp_path):
    import yaml
    trace = {"schema_version": 1, "ops": [{"name": "g", "kind": "gemm", "dims": {"M": 4096, "N": 4096, "K": 4096},
                                           "precision": {"activations": 16, "weights": 16, "outputs": 16},
                                           "sparsity": {"weights": {"kind": "nm", "n": 2, "m": 4}}}]}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(trace))
    from conftest import ARCH_DIR
    for df in ("os", "ws", "is"):
        code, out, _ = run_cli(capsys, "compare", "-a", ARCH_DIR / "ampere_like_2to4_tc.yaml", "-w", path,
                               "--set", f"compute.dataflow={df}", "--json")
        assert code == 0
        import json
        totals = json.loads(out.strip().splitlines()[-1])
        assert 1.0 <= totals["speedup"] <= 2.0 + 1e-9


@pytest.mark.parametrize("mapping, expect", [
    ({"spatial": {"rows": ["X"], "cols": ["K"]}}, "compute.mapping.spatial.rows: unknown dim 'X'"),
    ({"objective": "speed"}, "compute.mapping.objective"),
    ({"tiles": {"C": 100000000, "P": 100000, "K": 100000}}, "compute.mapping.tiles"),
    ({"tiles": {"R": 3}}, "unknown tiled dim 'R'"),
])
def test_bad_mapping_input_is_one_line_and_exit_2(capsys, tmp_path, mapping, expect):
    import yaml
    from conftest import ARCH_DIR, TRACE_DIR
    spec = yaml.safe_load((ARCH_DIR / "edge_npu_32x32_os.yaml").read_text())
    spec["compute"]["mapping"] = mapping
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    code, out, err = run_cli(capsys, "simulate", "-a", path, "-w", TRACE_DIR / "resnet18.yaml")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expect in lines[0], lines
    assert "bad.yaml" in lines[0]


def _edge_with_tiles(tmp_path, tiles):
    import yaml
    from conftest import ARCH_DIR
    spec = yaml.safe_load((ARCH_DIR / "edge_npu_32x32_os.yaml").read_text())
    spec["compute"]["mapping"]["tiles"] = tiles
    path = tmp_path / "pinned.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    trace = tmp_path / "big.yaml"
    trace.write_text("schema_version: 1\nops:\n- {name: big, kind: gemm, dims: {M: 4096, N: 4096, K: 4096}}\n")
    return path, trace


@pytest.mark.parametrize("tiles, expect", [
    ({"C": 99999999}, "pinned tile C=99999999 (the GEMM's K), clamped to the op's 4096, leaves no array-aligned"),
    ({"C": 4096}, "pinned tile C=4096 (the GEMM's K) leaves no array-aligned tile"),
    ({"C": 64, "K": 100000}, "pinned tile K=100000 (the GEMM's N), clamped to the op's 4096"),
])
def test_a_pinned_tile_that_cannot_fit_is_one_line_naming_file_field_op_and_fix(capsys, tmp_path, tiles, expect):
    # 4096^3 on the edge NPU: with K whole, A (32 x 4096) and B (4096 x 32) slices alone fill the 256 KiB
    # usable SRAM (no room left for partial sums); only tiles smaller than the array would fit, which a pin
    # must not force.
    path, trace = _edge_with_tiles(tmp_path, tiles)
    code, _, err = run_cli(capsys, "simulate", "-a", path, "-w", trace)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    d = next(iter(tiles)) if len(tiles) == 1 else "K"
    assert f"pinned.yaml: compute.mapping.tiles.{d}: op big: " in lines[0] and expect in lines[0]
    assert f"(pin {d} <= " in lines[0]
    from simulator import load_arch, load_trace
    from simulator.errors import SparsimInputError
    with pytest.raises(SparsimInputError) as info:
        simulate(load_trace(trace), load_arch(path))
    assert info.value.field == f"compute.mapping.tiles.{d}"


def test_a_pinned_tile_beyond_the_dim_is_clamped_and_says_so():
    trace = Trace(ops=[Op(name="g", kind="gemm", dims={"M": 64, "N": 40, "K": 24})])
    clamped = simulate(trace, arch("os", rows=8, cols=8, kib=4, mapping={"tiles": {"C": 1000}})).rows[0]
    exact = simulate(trace, arch("os", rows=8, cols=8, kib=4, mapping={"tiles": {"C": 24}})).rows[0]
    assert clamped["mapping"].endswith("| pinned K24 (clamped from 1000)")
    assert exact["mapping"].endswith("| pinned K24")
    assert clamped["mapping"].split(" | ")[:2] == exact["mapping"].split(" | ")[:2]
    assert clamped["cycles"] == exact["cycles"] and clamped["dram_read_bytes"] == exact["dram_read_bytes"]


def test_fixed_mode_is_the_fold_order_model():
    from simulator.memory import array_memory_cost  # noqa: F401  (the model `fixed` runs)
    trace = Trace(ops=[Op(name="g", kind="gemm", dims={"M": 64, "N": 64, "K": 256})])
    fixed = simulate(trace, arch("os", rows=8, cols=8, kib=6, shared=False, mapping={"mode": "fixed"})).rows[0]
    assert fixed["dram_read_bytes"] == 64 * 256 + math.ceil(64 / 8) * 256 * 64
    assert "mapping" not in fixed and "fold-level memory model" in fixed["model"]


@pytest.mark.parametrize("level", ["sram", "acc"])
def test_a_buffer_too_small_for_any_tile_names_its_capacity(capsys, tmp_path, level):
    import yaml
    from conftest import ARCH_DIR, TRACE_DIR, edge_npu_with_accumulator
    # the shipped spec's shared SRAM, or the accumulator of a spec that declares one
    spec = edge_npu_with_accumulator() if level == "acc" else yaml.safe_load((ARCH_DIR / "edge_npu_32x32_os.yaml").read_text())
    spec["memory"][level]["capacity_kib"] = 0.001           # 1 byte: not even a 1x1x1 tile with its partial sum
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    code, _, err = run_cli(capsys, "simulate", "-a", path, "-w", TRACE_DIR / "resnet18.yaml")
    assert code == 2
    assert err.strip().count("\n") == 0 and f"tiny.yaml: memory.{level}.capacity_kib" in err


def test_explain_prints_the_chosen_loop_nest(capsys):
    from conftest import ARCH_DIR, TRACE_DIR
    code, out, _ = run_cli(capsys, "simulate", "-a", ARCH_DIR / "edge_npu_32x32_os.yaml",
                           "-w", TRACE_DIR / "resnet50.yaml", "--explain", "layer1.0.conv2")
    assert code == 0
    assert "loop nest: K64 C64 P56 Q56 R3 S3" in out and "rows <- N*P*Q, cols <- K" in out
    assert "DRAM: input" in out and "lpddr4: read" in out


@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 200), N=st.integers(1, 200), K=st.integers(1, 400), kib=st.floats(0.5, 32),
       bw=st.floats(0.25, 32), factor=st.floats(1.0, 8.0), dataflow=st.sampled_from(["os", "ws", "is"]),
       objective=st.sampled_from(["latency", "energy"]))
def test_more_bandwidth_never_slows_the_searched_optimum(M, N, K, kib, bw, factor, dataflow, objective):
    trace = Trace(ops=[Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K})])
    slow = simulate(trace, arch(dataflow, rows=8, cols=8, kib=kib, dram_bpc=bw, mapping={"objective": objective})).rows[0]
    fast = simulate(trace, arch(dataflow, rows=8, cols=8, kib=kib, dram_bpc=bw * factor,
                                mapping={"objective": objective})).rows[0]
    if objective == "latency":
        assert fast["cycles"] <= slow["cycles"] * (1 + 1e-9)
        if fast["cycles"] >= slow["cycles"] * (1 - 1e-9):          # same latency: never more traffic
            assert fast["dram_read_bytes"] + fast["dram_write_bytes"] <= \
                (slow["dram_read_bytes"] + slow["dram_write_bytes"]) * (1 + 1e-9)
    assert fast["compute_cycles"] == slow["compute_cycles"]
