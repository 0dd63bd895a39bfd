"""Extractors that turn a model into a trace: from a Hugging Face config (`hf_config`), a live
PyTorch module with measured sparsity (`torch_trace`, optional torch extra), or an ONNX graph
(`onnx_trace`, optional onnx extra); plus sparsifiers (`sparsify`), tensor statistics (`stats`)
and sparsity recipes (`recipe`).

`trace_summary` condenses a trace into the numbers `sparsim extract` prints: op counts, dense
and effective MACs, parameter bytes dense and compressed, and sparsity per op kind.
"""

from __future__ import annotations

from collections import defaultdict

from simulator.trace import AttentionDims, ConvDims, GemmDims, MoeDims, Op, Sparsity, Trace

# Ops whose `weights` operand is a model parameter (for attention it is the KV cache), by dims class.
PARAMETER_DIMS = (GemmDims, ConvDims, MoeDims)


def effective_macs(op: Op) -> float:
    """MACs left after ideal skipping of every zero operand value, per execution x repeat x (1 - skip).

    Multiplies the dense MACs by the operand densities (A x B); for QK^T a sparse output map
    (block-sparse attention) also removes the products of the skipped output blocks.
    """
    sp = op.sparsity
    d = sp.activations.effective_density * sp.weights.effective_density
    if op.kind == "attention_qk":
        d *= sp.outputs.effective_density
    return op.dense_macs * op.repeat * (1.0 - op.skip_probability) * d


def parameter_elements(op: Op) -> int:
    """Weight values the op stores (all experts of an MoE op, not only the routed ones), x repeat."""
    d = op.dims
    if not isinstance(d, PARAMETER_DIMS):
        return 0
    if isinstance(d, MoeDims):
        return len(d.tokens_per_expert) * d.K * d.N * op.repeat
    return op.operand_elements()["weights"] * op.repeat


def compressed_bits_per_value(sparsity: Sparsity, value_bits: int) -> float:
    """Stored bits per dense weight value in the natural compressed format of its sparsity:
    N:M keeps N values plus ceil(log2 M) index bits each; unstructured uses a bitmap (1 bit per
    value); block keeps the dense blocks plus one bit per block; dense stores everything."""
    from simulator.formats import bits_per_element
    if sparsity.kind == "nm":
        return bits_per_element(sparsity, "nm", value_bits)
    if sparsity.kind == "unstructured":
        return min(float(value_bits), bits_per_element(sparsity, "bitmap", value_bits))
    if sparsity.kind == "block":
        r, c = sparsity.block
        return sparsity.effective_density * value_bits + 1.0 / (r * c)
    return float(value_bits)


def short_label(sparsity: Sparsity) -> str:
    """A compact sparsity label for tables: dense, 2:4, d0.50, blk64x64 d0.10 (measured: with '~')."""
    mark = "~" if sparsity.measured is not None else ""
    if sparsity.kind == "dense":
        return "dense" + (f" d{sparsity.effective_density:.2f}" if mark and sparsity.effective_density < 1 else "")
    if sparsity.kind == "nm":
        return f"{sparsity.n}:{sparsity.m}{mark}"
    if sparsity.kind == "block":
        return f"blk{sparsity.block[0]}x{sparsity.block[1]} d{sparsity.effective_density:.2f}{mark}"
    return f"d{sparsity.effective_density:.2f}{mark}"


def trace_summary(trace: Trace) -> dict:
    """Totals and per-kind rows: ops (instances incl. repeat), dense/effective MACs, weight bytes."""
    per_kind: dict[str, dict] = defaultdict(lambda: {"ops": 0, "instances": 0, "dense_macs": 0, "effective_macs": 0.0,
                                                     "param_bytes": 0.0, "param_bytes_compressed": 0.0,
                                                     "weights": set(), "activations": set(), "kv": set()})
    for op in trace.ops:
        row = per_kind[op.kind]
        row["ops"] += 1
        row["instances"] += op.repeat
        row["dense_macs"] += op.dense_macs * op.repeat
        row["effective_macs"] += effective_macs(op)
        n = parameter_elements(op)
        if n:
            row["param_bytes"] += n * op.precision.weights / 8
            row["param_bytes_compressed"] += n * compressed_bits_per_value(op.sparsity.weights, op.precision.weights) / 8
        if not op.is_vector:
            key = "kv" if isinstance(op.dims, AttentionDims) else "weights"
            row[key].add(short_label(op.sparsity.weights))
            row["activations"].add(short_label(op.sparsity.activations))
    kinds = {k: {**v, "weights": sorted(v["weights"]), "activations": sorted(v["activations"]), "kv": sorted(v["kv"])}
             for k, v in per_kind.items()}
    totals = {key: sum(v[key] for v in kinds.values())
              for key in ("ops", "instances", "dense_macs", "effective_macs", "param_bytes", "param_bytes_compressed")}
    return {"name": trace.name, "totals": totals, "kinds": kinds}


__all__ = ["trace_summary", "short_label", "effective_macs", "parameter_elements", "compressed_bits_per_value", "PARAMETER_DIMS"]
