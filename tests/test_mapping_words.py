"""Access-word energy (`access_word_bits`, simulator/mapping/words.py) against hand calculations.

The spec is ZigZag's tpu_like translation (rows <- C, cols <- K; SRAM holds activations and outputs;
per-PE weight and partial-sum registers); each test compares the same op with and without the
SRAM's 64-bit words, so only the word rounding differs.
"""

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from simulator import load_arch, simulate
from simulator.mapping.loopnest import LoopNest, Unrolling
from simulator.mapping.words import vector_factor, words_per_bit
from simulator.trace import trace_from_dict

SPEC = Path(__file__).resolve().parents[1] / "arch_configs" / "zigzag_tpu_like.yaml"
SRAM_READ, SRAM_WRITE = 0.2032, 0.18477      # pJ per bit of the translated SRAM


def _arch(tmp_path, words: bool):
    spec = yaml.safe_load(SPEC.read_text())
    for level in spec["memory"].values():
        level.pop("access_word_bits", None)
    if words:
        spec["memory"]["sram"]["access_word_bits"] = 64
    path = tmp_path / f"words_{words}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_arch(path)


def _row(tmp_path, dims: dict, words: bool) -> dict:
    trace = trace_from_dict({"schema_version": 1, "name": "t", "ops": [{"name": "op", "kind": "conv2d", "dims": dims}]})
    return simulate(trace, _arch(tmp_path, words)).rows[0]


def test_words_per_bit_rounds_up_to_whole_words():
    assert words_per_bit(8, 64) == 8.0            # one byte costs a 64-bit word
    assert words_per_bit(64, 64) == 1.0
    assert words_per_bit(72, 64) == pytest.approx(128 / 72)
    assert words_per_bit(256, 64) == 1.0
    assert words_per_bit(24, None) == 1.0          # no word size: per bit


@given(st.integers(1, 4096), st.integers(1, 512))
def test_words_per_bit_is_at_least_one_and_under_one_extra_word(bits, word):
    f = words_per_bit(bits, word)
    assert 1.0 <= f < 1.0 + word / bits + 1e-9


def test_vector_factor_of_a_partial_last_fold():
    # C = 36 on 32 rows: one fold reads 32 bytes a step (4 words), the last 4 bytes (one 64-bit word for 32 bits).
    nest = LoopNest(G=1, N=1, K=8, C=36, P=4, Q=4)
    unroll = Unrolling(("C",), ("K",), 32, 32)
    assert vector_factor(nest, unroll, "activations", 8, 64) == pytest.approx((256 + 64) / (256 + 32))
    # outputs are indexed by K on the columns: 8 outputs x 8 bits = one word, no rounding
    assert vector_factor(nest, unroll, "outputs", 8, 64) == 1.0


def test_depthwise_conv_pays_a_word_per_byte(tmp_path):
    # Depthwise 3x3, 4 channels, 8x8: the mapping unrolls C = 1 and K = 1, so one PE reads one input byte
    # per MAC (2304 array reads) and writes each of the 256 final outputs alone: 8x the per-bit energy.
    dims = {"N": 1, "C": 4, "H": 8, "W": 8, "K": 4, "R": 3, "S": 3, "stride": 1, "pad": 1, "groups": 4}
    bits, words = _row(tmp_path, dims, False), _row(tmp_path, dims, True)
    macs = 4 * 8 * 8 * 9
    assert words["energy_sram_read_pj"] - bits["energy_sram_read_pj"] == pytest.approx(macs * 8 * 7 * SRAM_READ)
    assert words["energy_sram_write_pj"] - bits["energy_sram_write_pj"] == pytest.approx(256 * 8 * 7 * SRAM_WRITE)
    for key in ("cycles", "sram_read_bytes", "sram_write_bytes", "dram_read_bytes", "energy_dram_read_pj"):
        assert words[key] == bits[key]


def test_three_channel_stem_pays_a_word_per_three_bytes(tmp_path):
    # C = 3 fills 3 rows: each step reads 24 bits, charged as one 64-bit word (8/3 per bit); K = 8 outputs
    # are 64 bits, a whole word. Array reads: C*P*Q*R*S = 3*8*8*9 = 1728 bytes.
    dims = {"N": 1, "C": 3, "H": 8, "W": 8, "K": 8, "R": 3, "S": 3, "stride": 1, "pad": 1}
    bits, words = _row(tmp_path, dims, False), _row(tmp_path, dims, True)
    assert words["energy_sram_read_pj"] - bits["energy_sram_read_pj"] == pytest.approx(1728 * (64 - 24) / 3 * SRAM_READ)
    assert words["energy_sram_write_pj"] == pytest.approx(bits["energy_sram_write_pj"])


def test_full_array_vectors_cost_the_same_as_per_bit(tmp_path):
    dims = {"N": 1, "C": 64, "H": 8, "W": 8, "K": 64, "R": 3, "S": 3, "stride": 1, "pad": 1}
    bits, words = _row(tmp_path, dims, False), _row(tmp_path, dims, True)
    assert words["energy_pj"] == pytest.approx(bits["energy_pj"], rel=1e-12)


def test_per_pe_register_words(tmp_path):
    # A 16-bit partial-sum register read and written once per MAC at 16-bit accumulator width: no rounding;
    # a 32-bit word doubles its energy.
    spec = yaml.safe_load(SPEC.read_text())
    dims = {"N": 1, "C": 32, "H": 4, "W": 4, "K": 32, "R": 1, "S": 1, "stride": 1, "pad": 0}
    trace = trace_from_dict({"schema_version": 1, "name": "t", "ops": [{"name": "op", "kind": "conv2d", "dims": dims}]})
    rows = {}
    for word in (16, 32):
        spec["memory"]["o_rf"]["access_word_bits"] = word
        path = tmp_path / f"o{word}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        rows[word] = simulate(trace, load_arch(path)).rows[0]
    for key in ("energy_o_rf_read_pj", "energy_o_rf_write_pj"):
        assert rows[32][key] == pytest.approx(2 * rows[16][key])


def test_a_zero_word_is_one_error_line(capsys):
    from cli_helpers import run_cli
    code, _, err = run_cli(capsys, "simulate", "-a", SPEC, "-w", "resnet18", "--set", "memory.sram.access_word_bits=0")
    assert code == 2 and err.strip().count("\n") == 0
    assert "memory.sram.access_word_bits" in err and "greater than 0" in err
