"""Plots are checked through their Figure objects: labelled axes, the Pareto front present and right."""

import numpy as np
import pandas as pd
import pytest

from analysis import plots as P
from analysis.pareto import non_dominated
from simulator.simulate import simulate
from simulator.spec import load_arch
from simulator.trace import trace_from_dict
from test_sweep_spec import BASE_ARCH, TINY_TRACE, make_sweep


@pytest.fixture(scope="module")
def design_df():
    rng = np.random.default_rng(1)
    n = 40
    rows = rng.choice([8, 16, 32, 64], n)
    lat = rng.uniform(1e-4, 1e-2, n)
    energy = 1e9 / (lat * 1e3) + rng.uniform(0, 5e8, n)  # a trade-off with noise
    return pd.DataFrame({"key": [f"k{i}" for i in range(n)], "compute.rows": rows,
                         "compute.dataflow": rng.choice(["os", "ws"], n), "latency_s": lat, "energy_pj": energy,
                         "feasible": rng.uniform(size=n) > 0.2, "status": "ok"})


@pytest.fixture(scope="module")
def result():
    sparse = dict(TINY_TRACE)
    sparse["ops"] = [dict(op) for op in TINY_TRACE["ops"]]
    sparse["ops"][0]["sparsity"] = {"weights": {"kind": "nm", "n": 2, "m": 4}}
    return simulate(trace_from_dict(sparse), load_arch(BASE_ARCH)), load_arch(BASE_ARCH)


def _front_line(ax):
    lines = [ln for ln in ax.get_lines() if ln.get_gid() == "pareto"]
    assert len(lines) == 1
    return lines[0]


def test_pareto_scatter_front_labels_and_colour(design_df):
    fig = P.pareto_scatter(design_df, color_by="compute.rows", params=["compute.rows", "compute.dataflow"])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "latency (ms)" and ax.get_ylabel() == "energy (mJ)"
    feas = design_df[design_df["feasible"]]
    expected = feas[non_dominated(feas[["latency_s", "energy_pj"]].to_numpy())]
    line = _front_line(ax)
    got = sorted(zip(line.get_xdata(), line.get_ydata()))
    want = sorted(zip(expected["latency_s"] * 1e3, expected["energy_pj"] * 1e-9))
    np.testing.assert_allclose(got, want)
    assert line.get_label() == f"Pareto front ({len(expected)} designs)"
    labels = [t for t in ax.texts if t.get_gid() == "pareto-label"]
    assert len(labels) == len(expected) and labels[0].get_text() == "P1"
    table = [t for t in fig.axes[1].texts if t.get_gid() == "pareto-table"][0].get_text()
    assert "rows=" in table and "dataflow=" in table
    assert any(a.get_ylabel() == "compute.rows" for a in fig.axes)  # the colour bar
    assert sorted(fig._sparsim["front_keys"]) == sorted(expected["key"])
    assert ax.get_legend() is not None


def test_pareto_scatter_rings_the_sweeps_full_pareto_set(design_df):
    # a third objective (area) puts more designs on the sweep's Pareto set than the 2-D front shows
    df = design_df.assign(area_mm2=np.linspace(5.0, 1.0, len(design_df)))
    feas = df[df["feasible"]]
    on = non_dominated(feas[["latency_s", "energy_pj", "area_mm2"]].to_numpy())
    df["pareto"] = df["key"].isin(feas["key"][on])
    fig = P.pareto_scatter(df, sweep_front_col="pareto", sweep_objectives=["latency", "energy", "area"])
    ax = fig.axes[0]
    rings = [c for c in ax.collections if c.get_gid() == "pareto-set"]
    assert len(rings) == 1
    got = sorted(map(tuple, rings[0].get_offsets()))
    want = sorted(zip(df.loc[df["pareto"], "latency_s"] * 1e3, df.loc[df["pareto"], "energy_pj"] * 1e-9))
    np.testing.assert_allclose(got, want)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"Pareto set over latency, energy, area ({int(df['pareto'].sum())} designs)" in legend
    # the 2-D front is still drawn, and every 2-D front design is in the full set
    front = _front_line(ax)
    assert set(zip(front.get_xdata(), front.get_ydata())) <= set(got)


def test_pareto_scatter_categorical_colour_and_files(design_df, tmp_path):
    fig = P.pareto_scatter(design_df, color_by="compute.dataflow")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "compute.dataflow=os" in texts and "compute.dataflow=ws" in texts
    cats = [c for c in fig.axes[0].collections if str(c.get_label()).startswith("compute.dataflow=")]
    assert len({c.get_paths()[0].vertices.tobytes() for c in cats}) == 2  # a marker each: overlaps stay visible
    paths = P.save(fig, tmp_path / "p")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)
    assert "<svg" in paths[1].read_text()[:500]


def test_parameter_effects_panels(design_df):
    fig = P.parameter_effects(design_df, ["compute.rows", "compute.dataflow"], ["latency_s", "energy_pj"])
    axes = fig.axes
    assert len(axes) == 4
    assert {a.get_xlabel() for a in axes} == {"compute.rows", "compute.dataflow"}
    assert {a.get_ylabel() for a in axes} == {"latency (ms)", "energy (mJ)"}
    ticks = [t.get_text() for t in axes[0].get_xticklabels()]
    assert ticks == ["8", "16", "32", "64"]


def test_op_breakdown(result):
    res, arch = result
    fig = P.op_breakdown(res, levels=list(arch.memory))
    ax_t, ax_e = fig.axes[:2]
    assert [t.get_text() for t in ax_t.get_yticklabels()] == [op["name"] for op in TINY_TRACE["ops"]]
    assert ax_t.get_xlabel() == "latency (ms)" and ax_e.get_xlabel() == "energy (mJ)"
    legend = [t.get_text() for t in ax_e.get_legend().get_texts()]
    assert "compute (MACs)" in legend and "sram" in legend and "lpddr4" in legend
    # stacked bars add up to each op's total latency and energy
    df = res.to_pandas()
    widths_t = np.sum([[b.get_width() for b in c] for c in ax_t.containers], axis=0)
    np.testing.assert_allclose(widths_t, df["latency_s"] * 1e3, rtol=1e-9)
    widths_e = np.sum([[b.get_width() for b in c] for c in ax_e.containers], axis=0)
    np.testing.assert_allclose(widths_e, df["energy_pj"] * 1e-9, rtol=1e-9)


def test_roofline(result):
    res, arch = result
    fig = P.roofline(res, arch)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "operational intensity" in ax.get_xlabel() and ax.get_ylabel() == "achieved MACs/s"
    roof = [ln for ln in ax.get_lines() if ln.get_gid() == "roof"][0]
    assert max(roof.get_ydata()) == pytest.approx(arch.compute.rows * arch.compute.cols * arch.clock_hz)
    points = sum(len(c.get_offsets()) for c in ax.collections)
    assert points == 3  # the three MAC ops; the elementwise op has no MACs
    # every op sits on or under the roof
    for c in ax.collections:
        for x, y in c.get_offsets():
            bound = min(roof.get_ydata().max(), arch.memory["lpddr4"].bandwidth_bytes_per_cycle * arch.clock_hz * x)
            assert y <= bound * 1.0001


def test_compare_bars(result):
    res, arch = result
    dense = simulate(trace_from_dict(TINY_TRACE), arch)
    fig = P.compare_bars({"dense": dense, "2:4": res})
    ax = fig.axes[0]
    assert ax.get_ylabel() == "latency (ms)"
    heights = [b.get_height() for b in ax.patches]
    assert heights == pytest.approx([dense.totals["latency_s"] * 1e3, res.totals["latency_s"] * 1e3])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dense", "2:4"]


def test_cli_plot_commands(tmp_path, capsys, monkeypatch):
    from analysis.sweep import run_sweep
    from cli_helpers import run_cli
    monkeypatch.setenv("SPARSIM_CODE_VERSION", "test-pinned")
    spec = make_sweep(tmp_path, strategy={"random": 12})
    run_sweep(spec, tmp_path / "sw", plots=False)
    code, _, err = run_cli(capsys, "plot", "pareto", tmp_path / "sw", "--color-by", "compute.dataflow",
                           "--no-effects", "-q")
    assert code == 0, err
    assert (tmp_path / "sw" / "plots" / "pareto_energy_latency.svg").exists()
    code, _, err = run_cli(capsys, "plot", "breakdown", "--sweep", tmp_path / "sw", "--point", "best:energy",
                           "-o", tmp_path / "b.png", "-q")
    assert code == 0, err and (tmp_path / "b.png").exists()
    code, _, err = run_cli(capsys, "plot", "roofline", "--arch", BASE_ARCH, "--workload", tmp_path / "tiny.yaml",
                           "-o", tmp_path / "r.png", "-q")
    assert code == 0, err and (tmp_path / "r.svg").exists()
    code, _, err = run_cli(capsys, "plot", "pareto", tmp_path / "sw", "--x", "latncy")
    assert code == 2 and "did you mean 'latency'" in err


# ----------------------------------------------------------------------------- readability at default size

from analysis.plot_labels import axis_texts, overlapping_texts, place_labels  # noqa: E402


def test_crowded_pareto_labels_do_not_overlap_and_infeasible_is_in_the_legend():
    n = 30
    lat = 1e-3 * (1 + np.arange(n) * 1e-3)             # a dense front: points nearly on top of each other
    df = pd.DataFrame({"key": [f"k{i}" for i in range(n)], "compute.dataflow": ["os", "ws", "is"] * 10,
                       "latency_s": lat, "energy_pj": 1e9 / lat * 1e-3, "feasible": [True] * 25 + [False] * 5})
    fig = P.pareto_scatter(df, color_by="compute.dataflow", max_labels=12)
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_gid() == "pareto-label"]
    assert len(labels) == 9  # 25 front points, every 3rd labelled (max_labels=12)
    assert not overlapping_texts(fig, axis_texts(ax))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "violates a constraint" in legend


def test_roofline_labels_do_not_overlap(result):
    res, arch = result
    fig = P.roofline(res, arch)
    assert not overlapping_texts(fig, axis_texts(fig.axes[0]))


def test_compare_bars_with_long_names_moves_them_to_a_legend(result):
    res, arch = result
    names = {f"a_long_accelerator_name_{i}\ndense": res for i in range(4)}
    fig = P.compare_bars(names)
    for ax in fig.axes:
        assert not overlapping_texts(fig, ax.get_xticklabels())
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[0] == "1: a_long_accelerator_name_0 dense"


def test_place_labels_separates_labels_of_coincident_points():
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.scatter([1, 1.001, 1.002, 1.003], [1, 1, 1, 1])
    ax.set_xlim(0, 2)
    ax.set_ylim(0, 2)
    anns = place_labels(ax, [(1, 1), (1.001, 1), (1.002, 1), (1.003, 1)], ["first", "second", "third", "fourth"])
    assert len(anns) == 4 and not overlapping_texts(fig, anns)
    plt.close(fig)


def test_parameter_axes_carry_units(design_df):
    df = design_df.assign(**{"memory.sram.capacity_kib": 64})
    df.loc[::2, "memory.sram.capacity_kib"] = 128
    fig = P.parameter_effects(df, ["memory.sram.capacity_kib"], ["latency_s"])
    assert fig.axes[0].get_xlabel() == "sram.capacity_kib (KiB)" and fig.axes[0].get_ylabel() == "latency (ms)"
