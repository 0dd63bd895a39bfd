"""benchmarks/papers.py: every published result is printed beside sparsim's with its source, the %
difference, and a reason wherever they differ by more than 15%."""

import importlib.util
import sys

import pytest

from conftest import ROOT


def _papers():
    spec = importlib.util.spec_from_file_location("papers", ROOT / "benchmarks" / "papers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["papers"] = module          # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_every_row_has_a_source_a_difference_and_a_reason_when_off(capsys):
    papers = _papers()
    results = papers.evaluate()
    claims = " ".join(r["claim"] for r in results)
    for needed in ("U280", "V100S", "VCU1525 2:8", "A100 2:4", "A100 LLaMA-2-7B latency, batch 1",
                   "A100 LLaMA-2-7B latency, batch 8", "H100 LLaMA-2-7B latency, batch 1",
                   "H100 LLaMA-2-7B latency, batch 8"):
        assert needed in claims
    for r in results:
        assert r["source"] and r["published"] > 0 and r["sparsim"] > 0
        assert abs(r["diff_pct"] - (r["sparsim"] - r["published"]) / r["published"] * 100) < 1e-9
        if abs(r["diff_pct"]) > papers.WHY_THRESHOLD_PCT:
            assert r["why"] and not r["why"].startswith("MISSING")
    papers.print_table(results)
    out = capsys.readouterr().out
    assert out.count("%  ") >= len(results) and "every other row states why" in out


def test_tp_split_recovers_a_known_a_plus_b_over_tp():
    """The a + b/TP fit of the batch growth returns the a and b a synthetic table was built from, and the
    shipped table's A100 fit is the one the batch-8 row quotes."""
    papers = _papers()
    batch1 = dict(zip(papers.NEMO_TP, (100.0, 90.0, 80.0, 70.0)))
    synthetic = {"X": {tp: {1: b1, 8: b1 + 30.0 + 60.0 / tp} for tp, b1 in batch1.items()}}
    a, b, growth = papers.tp_split_growth("X", synthetic)
    assert a == pytest.approx(30.0) and b == pytest.approx(60.0)
    assert growth == pytest.approx([90.0, 60.0, 45.0, 37.5])
    a, b, _ = papers.tp_split_growth("A100")
    assert 0 < a < b and f"b = {b:.1f} ms" in papers._batch8_why("A100")


def test_nemo_rows_show_kernels_only_and_with_the_stack_side_by_side():
    """Every NeMo latency row is printed kernels-only and kernels + the nemo-trtllm profile; the two differ by
    exactly batch x 20 tokens x the profile's time, and the batch-8 reason quotes the held-out estimate."""
    from simulator.serving_stack import load_stack
    papers = _papers()
    for gpu, arch in papers.NEMO_ARCH.items():
        t = load_stack("nemo-trtllm", arch).per_sequence_token_s * 1e3
        for batch in (1, 8):
            kernels = papers._nemo_latency_ms(arch + ".yaml", batch)
            stacked = papers._nemo_latency_ms(arch + ".yaml", batch, "nemo-trtllm")
            assert stacked - kernels == pytest.approx(batch * 20 * t)
        held_t, held_ms = papers._without_tp1_ms(gpu)
        assert f"{held_ms:.1f} ms" in papers._batch8_why(gpu) and held_t > 0
