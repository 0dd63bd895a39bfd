"""Run the `sparsim` CLI in-process and capture exit code, stdout and stderr."""

import sys

import pytest


def run_cli(capsys, *args) -> tuple[int, str, str]:
    from simulator.cli import main
    old = sys.argv
    sys.argv = ["sparsim", *map(str, args)]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = old
    out = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else code), out.out, out.err
