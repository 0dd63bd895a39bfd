"""Measured tensor statistics on hand-built patterns, sparsity recipes, and the sparsifiers."""

import math

import numpy as np
import pytest

from simulator.errors import SparsimInputError
from workloads.extract.recipe import parse_block_density, parse_weights
from workloads.extract.stats import (binomial_histogram, detect_nm, group_histogram, measure,
                                     sparsity_from_stats)


def two_of_four(rows, k, seed=0):
    """Every group of 4 along each row keeps exactly 2 (random positions, nonzero values)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 1.5, size=(rows, k))
    for r in range(rows):
        for g in range(k // 4):
            drop = rng.choice(4, size=2, replace=False)
            x[r, 4 * g + drop] = 0.0
    return x


# ----------------------------------------------------------------------------- statistics

def test_two_of_four_tensor_has_density_half_and_every_group_at_two():
    x = two_of_four(32, 64)
    s = measure(x)
    groups4 = 32 * 64 // 4
    assert s.density == 0.5
    assert s.group_histograms[4] == [0, 0, groups4, 0, 0]
    # an 8-group is two 4-groups: exactly 4 nonzeros
    assert s.group_histograms[8] == [0, 0, 0, 0, groups4 // 2, 0, 0, 0, 0]
    assert s.row_nnz == [32] * 32 and not s.row_nnz_is_sample
    assert detect_nm(s) == (2, 4)
    sp = sparsity_from_stats(s)
    assert (sp.kind, sp.n, sp.m, sp.effective_density) == ("nm", 2, 4, 0.5)


def test_unstructured_half_gives_a_binomial_histogram():
    rng = np.random.default_rng(1)
    x = (rng.random((256, 256)) < 0.5).astype(float)
    s = measure(x)
    groups = 256 * 256 // 4
    expected = [groups * p for p in binomial_histogram(4, 0.5)]   # 1/16, 4/16, 6/16, 4/16, 1/16
    assert expected == [1024, 4096, 6144, 4096, 1024]
    for seen, want in zip(s.group_histograms[4], expected):
        assert abs(seen - want) < 4 * math.sqrt(want)              # within 4 sigma of the binomial count
    assert abs(s.density - 0.5) < 0.01
    assert detect_nm(s) is None
    assert sparsity_from_stats(s).kind == "unstructured"


def test_block_sparse_tensor_reports_block_occupancy():
    rng = np.random.default_rng(2)
    keep = rng.random((8, 8)) < 0.25
    keep[0, 0], keep[0, 1] = True, False       # at least one block kept and one dropped
    x = np.kron(keep, np.ones((16, 16)))       # 128 x 128 made of 16x16 blocks
    s = measure(x)
    frac = keep.mean()
    assert s.density == pytest.approx(frac, abs=1e-6)
    assert s.block_density["16x16"] == pytest.approx(frac, abs=1e-6)
    assert s.block_density["4x4"] == pytest.approx(frac, abs=1e-6)
    sp = sparsity_from_stats(s)
    assert sp.kind == "block" and sp.block == (16, 16)


def test_row_nnz_is_exact_when_short_and_a_strided_sample_when_long():
    x = np.tril(np.ones((10, 10)))             # row i has i + 1 nonzeros
    s = measure(x)
    assert s.row_nnz == list(range(1, 11))
    # the last 2 columns fall outside the 4-groups and hold 3 of the 55 nonzeros: the histogram
    # (density 52/80 = 0.65 vs 0.55) would misdescribe the tensor, so it is left out
    assert 4 not in s.group_histograms
    big = np.tril(np.ones((200, 200)))
    s = measure(big, row_sample=5)
    assert s.row_nnz_is_sample and s.row_nnz == [1, 51, 101, 150, 200]   # rows 0, 50, 100, 149, 199


def test_partial_groups_at_the_row_end_are_left_out():
    x = np.ones((3, 10))
    assert group_histogram(x != 0, 4) == [0, 0, 0, 0, 6]       # 2 full groups per row
    assert group_histogram(np.ones((3, 3)) != 0, 4) is None


def test_all_zero_tensor_does_not_break_the_trace():
    s = measure(np.zeros((4, 8)))
    assert s.density == pytest.approx(1 / 32)


# ----------------------------------------------------------------------------- recipes

def test_recipes_parse_to_sparsity():
    assert (parse_weights("2:4").n, parse_weights("2:4").m) == (2, 4)
    assert parse_weights("0.3").density == 0.3 and parse_weights(0.3).kind == "unstructured"
    b = parse_weights("block:16x8:0.25")
    assert (b.kind, b.block, b.density) == ("block", (16, 8), 0.25)
    assert parse_weights(None) is None and parse_weights("dense") is None and parse_weights(1.0) is None
    assert parse_block_density(0.1).block == (64, 64)


@pytest.mark.parametrize("bad", ["5:4", "0:4", "1.5", "-0.1", "half", "block:0x4:0.5"])
def test_bad_recipes_are_one_clear_error(bad):
    with pytest.raises(SparsimInputError):
        parse_weights(bad)


# ----------------------------------------------------------------------------- sparsifiers (torch)

@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _mlp(torch, scale_second=1.0):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16))
    with torch.no_grad():
        m[2].weight.mul_(scale_second)
    return m


@pytest.mark.parametrize("n, m", [(2, 4), (1, 4), (2, 8)])
def test_nm_prune_keeps_n_of_every_m_inputs(torch, n, m):
    from workloads.extract.sparsify import nm_prune
    model = _mlp(torch)
    declared = nm_prune(model, n, m)
    assert set(declared) == {"0.weight", "2.weight"}
    s = measure(model[0].weight.detach().numpy())
    groups = 32 * 64 // m
    hist = [0] * (m + 1)
    hist[n] = groups
    assert s.group_histograms[m] == hist and s.density == n / m


def test_magnitude_prune_per_layer_and_global(torch):
    from workloads.extract.sparsify import magnitude_prune
    model = _mlp(torch, scale_second=100.0)
    magnitude_prune(model, 0.5, scope="layer")
    assert (model[0].weight == 0).float().mean().item() == 0.5
    assert (model[2].weight == 0).float().mean().item() == 0.5
    model = _mlp(torch, scale_second=100.0)
    magnitude_prune(model, 0.5, scope="global")
    # one threshold for 2048 + 512 weights: 1280 survive, nearly all in the 100x-larger layer
    kept = [(layer.weight != 0).sum().item() for layer in (model[0], model[2])]
    assert sum(kept) == 1280 and kept[1] > 0.95 * 512 and kept[0] < 0.4 * 2048


def test_block_prune_keeps_whole_blocks(torch):
    from workloads.extract.sparsify import block_prune
    model = _mlp(torch)
    block_prune(model, (16, 16), 0.25)
    s = measure(model[0].weight.detach().numpy(), block_transpose=True)
    assert s.density == 0.25 and s.block_density["16x16"] == 0.25


def test_activation_thresholding_keeps_the_largest_fraction_per_token(torch):
    from workloads.extract.sparsify import threshold_activations
    model = torch.nn.Sequential(torch.nn.Linear(40, 8))
    seen = []
    handles = threshold_activations(model, 0.25)
    model[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    x = torch.arange(1, 41, dtype=torch.float32).repeat(3, 1)
    model(x)
    assert (seen[0] != 0).sum(dim=1).tolist() == [10, 10, 10]
    assert seen[0][0, -10:].tolist() == list(range(31, 41))    # the 10 largest magnitudes survive
    for h in handles:
        h.remove()


def test_kv_pruning_zeroes_70_percent_of_each_token(torch):
    from workloads.extract.sparsify import prune_kv

    class Attn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.k_proj, self.v_proj = torch.nn.Linear(20, 20), torch.nn.Linear(20, 20)

        def forward(self, x):
            return self.k_proj(x), self.v_proj(x)

    m = Attn()
    prune_kv(m, 0.3)
    k, v = m(torch.randn(5, 20))
    assert (k != 0).sum(dim=1).tolist() == [6] * 5 and (v != 0).sum(dim=1).tolist() == [6] * 5


def test_block_sparse_attention_keeps_a_quarter_of_key_blocks_with_the_diagonal(torch):
    from workloads.extract.sparsify import BlockSparseAttention
    F = torch.nn.functional
    q, k = torch.randn(1, 2, 256, 16), torch.randn(1, 2, 256, 16)
    mode = BlockSparseAttention(0.25, block=64)
    mask = mode.block_mask(q, k)
    blocks = mask[..., ::64, ::64]
    assert blocks.sum(-1).eq(1).all() and torch.diagonal(blocks, dim1=-2, dim2=-1).all()
    with mode:
        out = F.scaled_dot_product_attention(q, k, torch.randn(1, 2, 256, 16))
    assert out.shape == (1, 2, 256, 16)


def test_layer_skipping_picks_middle_layers(torch):  # sparsify imports torch at module level
    from workloads.extract.sparsify import select_skipped_layers
    assert select_skipped_layers(32, 0.25) == [12, 13, 14, 15, 16, 17, 18, 19]
    assert select_skipped_layers(6, 0.5) == [1, 2, 3]
    assert select_skipped_layers(4, 0.0) == []
