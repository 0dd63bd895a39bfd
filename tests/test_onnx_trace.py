"""ONNX graphs built by hand: shapes by inference, attention patterns, counted non-MAC nodes,
weights measured when inline and never read when external."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from simulator.errors import SparsimInputError  # noqa: E402
from workloads.extract.onnx_trace import trace_from_onnx  # noqa: E402

H, HEADS, HD = 16, 2, 8


def two_of_four_weight(k, n):
    """[K, N] weight whose every group of 4 along K (per column) keeps 2 values."""
    w = np.ones((k, n), dtype=np.float32)
    w[0::4, :] = 0
    w[1::4, :] = 0
    return w


def encoder_block():
    """x[batch, seq, 16] -> q/k/v MatMuls -> per-head attention via MatMul/Softmax/MatMul -> LayerNorm."""
    nodes, inits = [], []
    for name in ("wq", "wk", "wv"):
        inits.append(numpy_helper.from_array(two_of_four_weight(H, H) if name == "wq" else
                                             np.full((H, H), 0.5, np.float32), name))
    inits.append(numpy_helper.from_array(np.array([0, 0, HEADS, HD], dtype=np.int64), "split_shape"))
    inits.append(numpy_helper.from_array(np.array([0.35], dtype=np.float32), "scale"))
    inits.append(numpy_helper.from_array(np.ones(H, np.float32), "gamma"))
    for p in ("q", "k", "v"):
        nodes.append(helper.make_node("MatMul", ["x", f"w{p}"], [f"{p}2"], name=f"{p}_proj"))
        nodes.append(helper.make_node("Reshape", [f"{p}2", "split_shape"], [f"{p}4"], name=f"{p}_reshape"))
        perm = [0, 2, 3, 1] if p == "k" else [0, 2, 1, 3]
        nodes.append(helper.make_node("Transpose", [f"{p}4"], [f"{p}h"], perm=perm, name=f"{p}_transpose"))
    nodes += [helper.make_node("MatMul", ["qh", "kh"], ["scores"], name="qk"),
              helper.make_node("Mul", ["scores", "scale"], ["scaled"], name="scale_scores"),
              helper.make_node("Softmax", ["scaled"], ["probs"], axis=-1, name="softmax"),
              helper.make_node("MatMul", ["probs", "vh"], ["ctx"], name="pv"),
              helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3], name="ctx_transpose"),
              helper.make_node("Reshape", ["ctx_t", "split_back"], ["ctx2"], name="merge_heads"),
              helper.make_node("Add", ["ctx2", "x"], ["res"], name="residual"),
              helper.make_node("LayerNormalization", ["res", "gamma"], ["y"], axis=-1, name="ln")]
    inits.append(numpy_helper.from_array(np.array([0, 0, H], dtype=np.int64), "split_back"))
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", H])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_encoder_block_ops_shapes_and_counted_non_mac_nodes(tmp_path):
    path = tmp_path / "block.onnx"
    onnx.save(encoder_block(), path)
    t = trace_from_onnx(path, batch=2, seq_len=10)
    kinds = {op.name: op.kind for op in t.ops}
    assert len(t.ops) == 17                                  # every node is an op, none dropped
    # q/k/v and the merge each have a Reshape and a Transpose, plus the score scaling Mul and the
    # residual Add: 10 MAC-free nodes, named in the description
    assert t.description.endswith("10 nodes as MAC-free elementwise ops (Reshape 4, Transpose 4, Add 1, Mul 1)")
    assert [kinds[n] for n in ("q_proj", "qk", "softmax", "pv", "ln", "residual")] == \
        ["gemm", "attention_qk", "softmax", "attention_pv", "norm", "elementwise"]
    q = next(op for op in t.ops if op.name == "q_proj")
    assert (q.dims.M, q.dims.K, q.dims.N) == (2 * 10, 16, 16)
    qk = next(op for op in t.ops if op.name == "qk")
    assert (qk.dims.batch, qk.dims.heads, qk.dims.q_len, qk.dims.kv_len, qk.dims.head_dim) == (2, 2, 10, 10, 8)
    # q/k/v projections + QK^T + PV, by hand
    assert t.dense_macs == 3 * 20 * 16 * 16 + 2 * (2 * 2 * 10 * 10 * 8)
    # shape nodes cost nothing; the residual add reads two 2x10x16 tensors
    reshape = next(op for op in t.ops if op.name == "q_reshape")
    assert (reshape.dims.elements, reshape.dims.inputs) == (1, 0)
    res = next(op for op in t.ops if op.name == "residual")
    assert (res.dims.elements, res.dims.inputs) == (320, 2)
    # inline weights are measured: wq is 2:4 along K
    w = q.sparsity.weights
    assert (w.kind, w.n, w.m, w.measured.group_histograms[4]) == ("nm", 2, 4, [0, 0, 64, 0, 0])


def test_external_weights_are_not_read_and_declared_sparsity_applies(tmp_path):
    model = encoder_block()
    path = tmp_path / "ext.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="ext.data",
              size_threshold=512)            # 16x16 fp32 weights go out, small shape tensors stay
    (tmp_path / "ext.data").unlink()        # the weights are gone: shapes must still work
    t = trace_from_onnx(path, batch=1, seq_len=4, weights="2:4")
    q = next(op for op in t.ops if op.name == "q_proj")
    assert q.sparsity.weights.kind == "nm" and q.sparsity.weights.measured is None


def test_gemm_conv_and_opset23_attention(tmp_path):
    nodes = [helper.make_node("Conv", ["img", "cw"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Gemm", ["a", "gw"], ["g"], transB=1, name="fc"),
             helper.make_node("Attention", ["q", "k", "v"], ["o"], name="attn")]
    inits = [numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "cw"),
             numpy_helper.from_array(np.ones((10, 32), np.float32), "gw")]
    ins = [helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 3, 16, 16]),
           helper.make_tensor_value_info("a", TensorProto.FLOAT, [4, 32]),
           helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 8, 6, 16]),
           helper.make_tensor_value_info("k", TensorProto.FLOAT, [1, 2, 20, 16]),
           helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 2, 20, 16])]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("c", "g", "o")]
    model = helper.make_model(helper.make_graph(nodes, "g", ins, outs, inits), opset_imports=[helper.make_opsetid("", 23)])
    path = tmp_path / "mixed.onnx"
    onnx.save(model, path)
    t = trace_from_onnx(path)
    ops = {op.name: op for op in t.ops}
    c = ops["conv"].dims
    assert (c.C, c.K, c.R, c.stride, c.pad, c.P, c.Q) == (3, 8, 3, 2, 1, 8, 8)
    assert (ops["fc"].dims.M, ops["fc"].dims.K, ops["fc"].dims.N) == (4, 32, 10)
    qk = ops["attn.qk"].dims
    assert (qk.heads, qk.kv_heads, qk.q_len, qk.kv_len, qk.head_dim) == (8, 2, 6, 20, 16)


def test_bad_files_raise_one_clear_error(tmp_path):
    with pytest.raises(SparsimInputError, match="not found"):
        trace_from_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 not protobuf at all \xff" * 10)
    with pytest.raises(SparsimInputError):
        trace_from_onnx(junk)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torch_export_and_torch_trace_agree_on_macs(tmp_path):
    """The same block traced live (torch) and from its ONNX export (legacy exporter) gives the same MACs."""
    torch = pytest.importorskip("torch")
    from workloads.extract.torch_trace import trace_module

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = (torch.nn.Linear(16, 16) for _ in range(3))
            self.ff = torch.nn.Linear(16, 32)

        def forward(self, x):
            split = lambda t: t.view(1, 10, 2, 8).transpose(1, 2)          # noqa: E731
            p = torch.softmax(split(self.q(x)) @ split(self.k(x)).transpose(-1, -2), dim=-1)
            return self.ff((p @ split(self.v(x))).transpose(1, 2).reshape(1, 10, 16))

    x = torch.randn(1, 10, 16)
    path = tmp_path / "block.onnx"
    torch.onnx.export(Block(), (x,), str(path), dynamo=False, opset_version=17)
    from_onnx = trace_from_onnx(path)
    live = trace_module(Block(), (x,))
    assert from_onnx.dense_macs == live.dense_macs == 3 * 10 * 16 * 16 + 10 * 16 * 32 + 2 * (2 * 10 * 10 * 8)
    assert sorted(op.kind for op in from_onnx.ops if op.kind.startswith("attention")) == ["attention_pv", "attention_qk"]
