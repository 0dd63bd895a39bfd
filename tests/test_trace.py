"""Trace IR: lowering to GEMMs, file round trips, SCALE-Sim CSV import, validation."""

import pytest

from simulator import SparsimInputError, load_trace, save_trace
from simulator.trace import Op, Trace, trace_from_dict

from conftest import ARCH_DIR, TRACE_DIR


def test_grouped_conv_lowers_to_one_gemm_per_group():
    op = Op(name="dw", kind="conv2d", dims={"C": 32, "H": 112, "W": 112, "K": 32, "R": 3, "S": 3,
                                           "stride": 2, "pad": 1, "groups": 32})
    (g,) = op.gemm_shapes()
    assert (g.M, g.N, g.K, g.count) == (56 * 56, 1, 9, 32)
    assert op.dense_macs == 56 * 56 * 9 * 32


def test_attention_gemms_use_kv_heads_for_cache_size():
    qk = Op(name="qk", kind="attention_qk", dims={"heads": 32, "kv_heads": 8, "q_len": 1, "kv_len": 2048, "head_dim": 128})
    (g,) = qk.gemm_shapes()
    # the 4 query heads of each KV group share one K: stacked along M, one GEMM per KV head
    assert (g.M, g.N, g.K, g.count) == (4, 2048, 128, 8)
    assert qk.dense_macs == 32 * 1 * 2048 * 128  # same work as one GEMM per query head
    assert qk.operand_elements()["weights"] == 8 * 2048 * 128  # K cache is per KV head (GQA)


def test_gqa_decode_reads_each_kv_head_once_from_dram():
    """KV-cache DRAM traffic of a decode step scales with kv_heads, not with query heads."""
    from simulator import load_arch, simulate
    from simulator.trace import Trace
    arch = load_arch(ARCH_DIR / "edge_npu_32x32_os.yaml")

    def kv_read_bytes(kv_heads):
        pv = Op(name="pv", kind="attention_pv", precision={"activations": 8, "weights": 8, "outputs": 8},
                dims={"heads": 8, "kv_heads": kv_heads, "q_len": 1, "kv_len": 4096, "head_dim": 64})
        row = simulate(Trace(ops=[pv]), arch).rows[0]
        return row["lpddr4_read_bytes"]

    v_bytes = lambda kv_heads: kv_heads * 4096 * 64  # noqa: E731  (8-bit V cache)
    for kv_heads in (1, 2, 8):
        # V streams once; the probabilities (8 x 4096 bytes) are the only other read
        assert kv_read_bytes(kv_heads) == pytest.approx(v_bytes(kv_heads) + 8 * 4096, rel=0.01)


def test_moe_groups_experts_by_token_count():
    op = Op(name="e", kind="moe_gemm", dims={"tokens_per_expert": [3, 0, 3, 5], "N": 8, "K": 4})
    assert op.dense_macs == (3 + 3 + 5) * 8 * 4


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_preserves_the_trace(tmp_path, suffix):
    trace = load_trace(TRACE_DIR / "mobilenet_v2.yaml")
    path = save_trace(trace, tmp_path / f"t{suffix}")
    assert load_trace(path) == trace


def test_shipped_cnn_traces_match_published_mac_counts():
    # torchvision model cards: ResNet-18 1.81 GFLOPS (MACs), ResNet-50 4.09, MobileNet-v2 0.30.
    for name, gmacs in (("resnet18", 1.81), ("resnet50", 4.09), ("mobilenet_v2", 0.30)):
        assert load_trace(TRACE_DIR / f"{name}.yaml").dense_macs / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_scalesim_gemm_topology_with_nm_column(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("Layer, M, N, K, Sparsity,\nfc1, 64, 128, 256, 2:4,\nfc2, 8, 8, 8,\n")
    trace = load_trace(p)
    assert [o.dims.K for o in trace.ops] == [256, 8]
    assert trace.ops[0].sparsity.weights.label == "2:4"
    assert trace.ops[1].sparsity.weights.kind == "dense"


@pytest.mark.parametrize("sparsity, message", [
    ({"kind": "nm", "n": 5, "m": 4}, "n <= m"),
    ({"kind": "unstructured", "density": 1.5}, "density"),
    ({"kind": "unstructured", "density": 0}, "density"),
    ({"kind": "block", "density": 0.5}, "block"),
])
def test_invalid_sparsity_is_rejected_with_its_field(sparsity, message):
    data = {"schema_version": 1, "ops": [{"name": "a", "kind": "gemm", "dims": {"M": 1, "N": 1, "K": 4},
                                          "sparsity": {"weights": sparsity}}]}
    with pytest.raises(SparsimInputError) as err:
        trace_from_dict(data, path="t.yaml")
    assert "ops[a].sparsity.weights" in str(err.value) and message in str(err.value)


def test_duplicate_op_names_are_rejected():
    with pytest.raises(SparsimInputError, match="appears twice"):
        trace_from_dict({"schema_version": 1, "ops": [{"name": "a", "kind": "gemm", "dims": {"M": 1, "N": 1, "K": 1}}] * 2})


def test_trace_objects_are_valid_python_api():
    t = Trace(ops=[Op(name="x", kind="gemm", dims={"M": 2, "N": 3, "K": 4}, repeat=5)])
    assert t.dense_macs == 2 * 3 * 4 * 5
