"""arch_configs/zigzag_tpu_like.yaml against ZigZag 3.9.1's own tpu_like files and its recorded results.

1. The translation: every number of the sparsim spec is re-derived from ZigZag's hardware and mapping
   files (copied, MIT-licensed, in benchmarks/results/zigzag/tpu_like/) by the rules stated in the spec's
   header -- sizes in bits, r_cost/w_cost per access of the port's bandwidth_max bits.
2. Peer agreement: sparsim on the translated spec vs the recorded ZigZag runs
   (benchmarks/results/zigzag/*.json, produced by benchmarks/zigzag_runner.py; no ZigZag install needed).
   Tolerance: the issue's 10% on total cycles and energy of the conv/gemm layers. Cases that do not meet
   it are marked xfail(strict=True) with the measured gap and its mechanism (docs/mapping_vs_zigzag.md),
   so an improvement shows up as an XPASS failure and the marker must then be removed.
"""

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_vs_zigzag import RESULTS, compare, zigzag_layer_op  # noqa: E402

from simulator import load_arch  # noqa: E402

SPEC = ROOT / "arch_configs" / "zigzag_tpu_like.yaml"
ZZ = RESULTS / "tpu_like"
TOLERANCE = 0.10
LEVELS = {"rf_128B": "w_rf", "rf_2B": "o_rf", "sram_2MB": "sram", "dram": "dram"}
OPERANDS = {"W": "weights", "I": "activations", "O": "outputs"}


def _zigzag_files():
    hw = yaml.safe_load((ZZ / "hardware_tpu_like.yaml").read_text())
    mapping = {m["name"]: m for m in yaml.safe_load((ZZ / "mapping_tpu_like.yaml").read_text())}
    return hw, mapping


def _port_bits(memory: dict, kind: str) -> int:
    """bandwidth_max of the port that serves `kind` (read/write; a read_write port serves both)."""
    ports = [p for p in memory["ports"] if p["type"] in (kind, "read_write")]
    return max(p["bandwidth_max"] for p in ports)


def test_memory_levels_follow_the_zigzag_hardware_file():
    hw, mapping = _zigzag_files()
    spec = yaml.safe_load(SPEC.read_text())
    links = mapping["default"]["memory_operand_links"]          # layer operand -> memory operand
    mem_to_layer = {v: OPERANDS[k] for k, v in links.items()}
    assert list(spec["memory"]) == [LEVELS[name] for name in hw["memories"]]   # innermost first
    for name, zz in hw["memories"].items():
        ours = spec["memory"][LEVELS[name]]
        assert sorted(ours["holds"]) == sorted(mem_to_layer[op] for op in zz["operands"])
        rd, wr = _port_bits(zz, "read"), _port_bits(zz, "write")
        assert ours["read_energy_pj_per_bit"] == pytest.approx(zz["r_cost"] / rd, rel=1e-4)
        assert ours["write_energy_pj_per_bit"] == pytest.approx(zz["w_cost"] / wr, rel=1e-4)
        # ZigZag charges every transfer in words of the port's bandwidth_min
        assert ours["access_word_bits"] == min(p["bandwidth_min"] for p in zz["ports"])
        per_mac = zz["served_dimensions"] == []
        assert ours.get("per_pe", False) == per_mac
        if ours["kind"] == "dram":
            assert ours["bandwidth_bytes_per_cycle"] == rd / 8
            continue
        assert ours["capacity_kib"] * 1024 * 8 == zz["size"]
        if not per_mac:
            assert ours["bandwidth_bytes_per_cycle"] == rd / 8 and not ours["double_buffered"]


def test_array_precision_and_unrolling_follow_the_zigzag_files():
    hw, mapping = _zigzag_files()
    spec = yaml.safe_load(SPEC.read_text())
    compute = spec["compute"]
    array = hw["operational_array"]
    assert [compute["rows"], compute["cols"]] == sorted(array["sizes"])
    assert spec["energy"]["mac_pj"] == {8: array["unit_energy"]}
    unroll = {dim: spec for dim, spec in mapping["default"]["spatial_mapping"].items()}
    # D1 <- K (output channels), D2 <- C (input channels): C on the rows, K on the columns
    assert unroll["D1"] == ["K, 32"] and unroll["D2"] == ["C, 32"]
    assert compute["mapping"]["spatial"] == {"rows": ["C"], "cols": ["K"]}
    # ZigZag's ONNX parser: 8-bit I/W/O_final, partial sums 2x the activation width
    assert compute["precision"] == {"activations": 8, "weights": 8, "outputs": 8, "accumulator": 16}


# ----------------------------------------------------------------------------- peer agreement

# (case, metric) -> why sparsim is outside the tolerance today; see docs/mapping_vs_zigzag.md.
KNOWN_GAPS: dict[tuple[str, str], str] = {
    ("gemm1024", "cycles"): "-10.4%: ZigZag waits for its whole first SRAM tile (the 1 MiB input, 131,072 cycles) "
                            "before computing; sparsim streams tiles (docs/mapping_vs_zigzag.md, item 3)",
    ("gemm4096x1024x1024", "energy_pj"): "-37.1%: LOMA splits M = 4096 only at merged prime factors (256 or 16 rows "
                                         "per SRAM tile) and re-reads the weights 16x; sparsim keeps 1366 rows and "
                                         "re-reads them 3x (item 9)",
    ("gemm512", "cycles"): "-17.4%: ZigZag onloads the whole 256 KB input (32,768 cycles) first (item 3)",
    ("gemm256x256x4096", "cycles"): "-34.0%: ZigZag onloads the whole 1 MiB input (131,072 cycles) first; sparsim is "
                                    "at the DRAM bound, 2.16 MB / 8 B per cycle (item 3)",
    ("gemm2048x256x2048", "cycles"): "-12.2%: LOMA's best mapping keeps output columns innermost and stalls; sparsim "
                                     "finds a faster one (item 9)",
    ("gemm2048x256x2048", "energy_pj"): "-22.3%: LOMA's mapping sends partial sums through the SRAM 64 times "
                                        "(209 uJ); sparsim's keeps them in the PE registers (item 9)",
    ("bert_large_layer", "energy_pj"): "-10.5%: as gpt2_layer on its FFN output GEMM (512x1024x4096: -26.8%), "
                                       "item 11",
    ("gpt2_layer", "energy_pj"): "-14.1%: LOMA's latency includes the whole-first-tile wait (item 3), so on the two "
                                 "reduction-heavy GEMMs it picks reduction-outermost mappings whose 16-bit partial "
                                 "sums "
                                 "cross the SRAM every fold (attn.c_proj -25%, mlp.c_proj -29%); sparsim keeps them in "
                                 "the PE (item 11)",
}

CASES = ("gemm1024", "gemm1x4096x4096", "gemm4096x1024x1024", "resnet18", "alexnet", "mobilenetv2",
         "gemm128x3072x768", "gemm512", "gemm64x4096x1024", "gemm2048x256x2048", "gemm8192x64x512", "gemm256x256x4096",
         "resnet50", "vgg16", "efficientnet_b0_lite", "squeezenet1_1", "googlenet", "inception_v3_lite",
         "bert_base_layer", "bert_large_layer", "gpt2_layer")


@pytest.fixture(scope="module")
def comparisons():
    arch = load_arch(SPEC)
    return {case: compare(case, json.loads((RESULTS / f"{case}.json").read_text()), arch, repeats=0)
            for case in CASES}


def _params():
    out = []
    for case in CASES:
        for metric in ("cycles", "energy_pj"):
            gap = KNOWN_GAPS.get((case, metric))
            marks = [pytest.mark.xfail(reason=gap, strict=True)] if gap else []
            out.append(pytest.param(case, metric, marks=marks, id=f"{case}-{metric}"))
    return out


@pytest.mark.parametrize("case,metric", _params())
def test_totals_within_tolerance_of_zigzag(comparisons, case, metric):
    totals = comparisons[case]["totals"]
    ours, theirs = totals["sparsim"][metric], totals["zigzag"][metric]
    assert abs(ours - theirs) <= TOLERANCE * theirs, f"{case} {metric}: sparsim {ours:,.0f} vs ZigZag {theirs:,.0f}"


def test_dram_bound_gemv_agrees_on_bytes_and_cycles(comparisons):
    # 1 x 4096 x 4096 int8: 16 MiB of weights cross the 8-byte/cycle DRAM port once in both tools.
    t = comparisons["gemm1x4096x4096"]["totals"]
    assert t["sparsim"]["dram_bytes"] == pytest.approx(t["zigzag"]["dram_bytes"], rel=0.01)
    assert t["sparsim"]["cycles"] >= 4096 * 4096 / 8


@pytest.mark.parametrize("case,published", [("resnet50", 4.09e9), ("vgg16", 15.47e9)])
def test_generated_networks_have_the_published_mac_counts(case, published):
    # benchmarks/zigzag_networks.py against the literature: torchvision's ResNet-50 (4.09 GMACs at 224x224)
    # and VGG-16 configuration D (15.47 GMACs); ZigZag parsed the same layers (its per-layer MAC counts).
    from zigzag_networks import build
    model = build(case)
    assert sum(n.op_type in ("Conv", "Gemm") for n in model.graph.node) == {"resnet50": 54, "vgg16": 16}[case]
    macs = sum(layer["macs"] for layer in json.loads((RESULTS / f"{case}.json").read_text())["layers"])
    assert macs == pytest.approx(published, rel=0.01)


def test_a_one_axis_padded_conv_is_rebuilt_from_zigzag_dims():
    # Inception-v3's 1x7 conv on a 17 x 17 map pads only the width (ZigZag: IX padding 3, IY 0).
    layer = {"name": "/b7x7/Conv", "type": "Conv",
             "loop_sizes": {"B": 1, "K": 192, "G": 1, "OX": 17, "OY": 17, "C": 128, "FX": 7, "FY": 1},
             "dimension_relations": ["IX = 1*OX + 1*FX", "IY = 1*OY + 1*FY"],
             "padding": {"IX": [3, 3], "IY": [0, 0]}, "pr_loop_sizes": {"IX": 23, "IY": 17}}
    dims = zigzag_layer_op(layer)["dims"]
    assert (dims["H"], dims["W"], dims["R"], dims["S"]) == (17, 17, 1, 7)
    assert (dims["out_h"], dims["out_w"], dims["stride"]) == (17, 17, 1)
