"""`sparsim` command line. The CLI owns the terminal; user mistakes print one line and exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from simulator.cli_conventions import plain_flags_show_no_type
from simulator.errors import SparsimInputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="sparsim: simulate sparse neural networks on accelerator designs.")
console = Console()
err_console = Console(stderr=True)


plain_flags_show_no_type()


def _print_version(value: bool) -> None:
    if value:
        from simulator import __version__
        print(f"sparsim {__version__}")
        raise typer.Exit()


@app.callback()
def _group(version: bool = typer.Option(False, "--version", "-V", callback=_print_version, is_eager=True,
                                        help="print the version and exit")) -> None:
    """sparsim: simulate sparse neural networks on accelerator designs."""


def si(x, unit: str = "") -> str:
    """Compact engineering notation for tables: 1.23M, 45.6u."""
    if isinstance(x, str):
        return x
    if x is None or x != x:
        return "-"
    if x == 0:
        return f"0{unit}"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""),
                           (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(x) >= factor:
            return f"{x / factor:.3g}{prefix}{unit}"
    return f"{x:.3g}{unit}"


def _arch_note(arch) -> str:
    """'800 MHz, a8/w8 operands' for a table title: the clock and the datapath precision."""
    if arch is None:
        return ""
    p = arch.compute.datapath_precision
    bits = f", a{p.activations}/w{p.weights} operands" if p is not None else ""
    return f" ({arch.clock_mhz:g} MHz{bits})"


def print_result(result, top: int, arch=None) -> None:
    rows = result.rows
    table = Table(title=f"{result.workload} on {result.arch}{_arch_note(arch)}", show_lines=False)
    cols = {"op": "", "cycles": "", "stall_cycles": "", "dense_macs": "", "macs": "",
            "utilization": "%", "energy_pj": "J", "latency_s": "s"}
    if all(r["macs"] == r["dense_macs"] for r in rows):
        del cols["dense_macs"]  # only worth a column when sparsity removed work
    heads = {"stall_cycles": "stall", "dense_macs": "dense MACs", "macs": "MACs", "utilization": "util",
             "energy_pj": "energy", "latency_s": "latency"}
    widest = max((len(r["op"]) for r in rows), default=2)
    for c in cols:
        table.add_column(heads.get(c, c), justify="left" if c == "op" else "right",
                         overflow="fold" if c == "op" else "ellipsis", no_wrap=c != "op",
                         min_width=min(24, widest) if c == "op" else None)
    shown = rows if top <= 0 or len(rows) <= top else rows[:top]
    for r in shown:
        cells = []
        for c, unit in cols.items():
            v = r[c]
            cells.append(f"{v:.1%}" if unit == "%" else si(v * 1e-12, unit) if c == "energy_pj" else si(v, unit))
        table.add_row(*cells)
    console.print(table)
    if len(shown) < len(rows):
        console.print(f"... {len(rows) - len(shown)} more ops (use --top 0 for all, or --out FILE)")
    t = result.totals
    stall_share = t["stall_cycles"] / t["cycles"] if t["cycles"] else 0.0
    console.print(f"[bold]total[/bold]: {t['ops']} ops, {si(t['cycles'])} cycles "
                  f"({stall_share:.1%} memory stalls), {si(t['macs'])} of {si(t['dense_macs'])} dense MACs, "
                  f"latency {si(t['latency_s'], 's')}, energy {si(t['energy_pj'] * 1e-12, 'J')}, "
                  f"utilization {t['utilization']:.1%}, area {t['area_mm2']:.3g} mm^2, "
                  f"average power {si(t['power_w'], 'W')}"
                  + (f" (board limit {t['board_tdp_w']:.0f} W)" if t.get("board_tdp_w") else "")
                  + (f", {si(t['energy_per_token_j'], 'J')}/token" if t.get("energy_per_token_j") else ""),
                  soft_wrap=True)
    if t.get("power_note"):
        console.print(f"[yellow]note[/yellow]: {t['power_note']}")
    if result.resources:
        r = result.resources
        used = ", ".join(f"{k.upper()} {r[k]['used']:,}/{r[k]['available']:,}" for k in ("dsp", "bram36", "uram", "lut", "ff")
                         if k in r)
        console.print(f"[bold]resources[/bold] ({r.get('device', '?')}): {used}")
    if result.memory_bound and "memory_bound_tokens_per_s" in t:
        b = result.memory_bound
        console.print(f"[bold]throughput[/bold]: {t['tokens_per_s']:.4g} tokens/s; memory-bound limit "
                      f"{b['bound_tokens_per_s']:.4g} tokens/s ({b['weight_bytes'] / 1e9:.3g} GB of weights per pass / "
                      f"{b['peak_bytes_per_s'] / 1e9:.4g} GB/s peak off-chip)")
    notes = sorted({r["notes"] for r in rows if r.get("notes")})
    for n in notes:
        console.print(f"[yellow]note[/yellow]: {n}")


def simulate_located(run, trace, spec, arch_path: Path, workload_path: Path):
    """`run(trace, spec)`, with an engine's error pinned to the file it is about."""
    from simulator.simulate import is_arch_error
    try:
        return run(trace, spec)
    except SparsimInputError as exc:
        raise exc.located(arch_path if is_arch_error(exc) else workload_path) from None


ARCH_OPTION = typer.Option(..., "--arch", "-a", help="accelerator spec: YAML, SCALE-Sim .cfg, or a shipped name "
                           "(sparsim list specs)")
WORKLOAD_OPTION = typer.Option(..., "--workload", "-w", help="trace YAML/JSON, SCALE-Sim topology CSV, or a shipped "
                               "name (sparsim list traces)")
SET_OPTION = typer.Option([], "--set", help="override a spec field: dotted.path=value (repeatable)")
OUT_OPTION = typer.Option(None, "--out", "-o", help="write per-op rows to .csv, .parquet or .json")
JSON_OPTION = typer.Option(False, "--json", help="print totals as one JSON object")
JSON_RESULT_OPTION = typer.Option(False, "--json", help="print the result as JSON instead of text")
QUIET_OPTION = typer.Option(False, "--quiet", "-q", help="print nothing but errors")
TOP_OPTION = typer.Option(30, "--top", help="ops shown in the table (0 = all)")
EXPLAIN_OPTION = typer.Option(None, "--explain", help="print OP's chosen mapping: loop nest, tile sizes, traffic per level")


@app.command()
def simulate(
    arch: Path = ARCH_OPTION,
    workload: Path = WORKLOAD_OPTION,
    set_: list[str] = SET_OPTION,
    out: Optional[Path] = OUT_OPTION,
    as_json: bool = JSON_OPTION,
    quiet: bool = QUIET_OPTION,
    top: int = TOP_OPTION,
    explain: Optional[str] = EXPLAIN_OPTION,
):
    """Simulate a workload on an accelerator and print per-op and total cycles, energy and area."""
    from simulator.simulate import simulate as run
    from simulator.spec import load_arch
    from simulator.trace import load_trace

    spec = load_arch(arch, list(set_))
    trace = load_trace(workload)
    if explain:   # one op's mapping; the whole trace is simulated only when --out asks for its table
        from simulator.mapping.explain import explain_op
        text = simulate_located(lambda t, s: explain_op(t, s, explain), trace, spec, arch, workload)
        if out:
            simulate_located(run, trace, spec, arch, workload).save(out)
        print(text)
        return
    result = simulate_located(run, trace, spec, arch, workload)
    if out:
        result.save(out)
    if as_json:
        from simulator.outputs import finite_json
        print(finite_json(result.totals))
    elif not quiet:
        print_result(result, top, spec)
        if out:
            console.print(f"wrote {out}")


def _register_commands() -> None:
    """Subcommands of every package register on `app` (declared in pyproject.toml: `simulator.cli_commands`)."""
    from simulator.cli_commands import register_commands
    register_commands()


def main() -> None:
    from simulator.cli_errors import run_cli
    run_cli(app, _register_commands)


if __name__ == "__main__":
    # Subcommands register on the imported `simulator.cli`, not on this `__main__` copy.
    from simulator.cli import main as _main
    _main()
