"""`sparsim list specs|systems|traces|models|sweeps`: the files that ship with sparsim, one line each.

Every name listed works wherever a file is asked for (`-a edge_npu_32x32_os`, `-w resnet50`,
`--model llama2-7b`, `sparsim sweep edge_npu_resnet50`), from any directory.
"""

from __future__ import annotations

import json

import typer

from simulator.cli import JSON_RESULT_OPTION, app, console
from simulator.errors import SparsimInputError, nearest


@app.command("list")
def list_cmd(
    what: str = typer.Argument(..., help="specs | systems | traces | models | sweeps"),
    as_json: bool = JSON_RESULT_OPTION,
    paths: bool = typer.Option(False, "--paths", help="print the file path instead of the description"),
):
    """List the shipped arch specs, system specs, traces, HF model configs or sweep specs by name."""
    from simulator import shipped
    if what not in shipped.KINDS:
        guess = nearest(what, shipped.KINDS)
        raise SparsimInputError(f"unknown list '{what}'", field="list", hint=(f"did you mean '{guess}'? " if guess
                                else "") + "one of: " + ", ".join(shipped.KINDS))
    entries = shipped.listing(what)
    if as_json:
        print(json.dumps([{"name": n, "description": d, "path": str(p)} for n, d, p in entries]))
        return
    width = max((len(n) for n, _, _ in entries), default=0)
    for name, desc, path in entries:
        text = str(path) if paths else desc
        console.print(f"{name:<{width}}  {text}".rstrip(), markup=False, highlight=False, soft_wrap=True)
