"""How the `sparsim` command ends: every mistake is one `error:` line on stderr and exit 2.

Click/typer would print usage mistakes (unknown option, missing argument, bad value,
unknown subcommand) as a boxed multi-line panel; here they become one line naming the
command and the flag. Python warnings (numpy's RuntimeWarning and friends) never reach
the terminal. An exception that is not a `SparsimInputError` is a bug: it is printed as
one `error: internal error:` line and exit 3 (set SPARSIM_DEBUG=1 for the traceback), so
a user never sees a traceback and the fuzz tests can still tell bugs (exit 3) apart from
clean refusals (exit 2).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Callable

try:  # recent typer vendors click; its exceptions are its own classes
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - an older typer on the real click
    from click import exceptions as click_exc
from typer import Abort

from simulator.errors import SparsimInputError, printable

USAGE_EXIT = 2
INTERNAL_EXIT = 3


def say_error(text: str) -> None:
    """Write one `error:` line to stderr (control characters escaped, so it stays one line)."""
    try:
        sys.stderr.write(f"error: {printable(text)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def usage_error_line(exc: click_exc.UsageError) -> str:
    """`sparsim simulate: --top: 'abc' is not a valid integer (see 'sparsim simulate --help')`."""
    ctx = exc.ctx
    where = ctx.command_path if ctx is not None else "sparsim"
    group = ctx is not None and hasattr(ctx.command, "list_commands")
    if isinstance(exc, getattr(click_exc, "NoArgsIsHelpError", ())) or (
            group and "Missing command" in exc.format_message()):
        names = ", ".join(sorted(ctx.command.list_commands(ctx))) if group else ""
        what = f"missing command (one of: {names})" if names else "missing arguments"
        return f"{where}: {what} (see '{where} --help')"
    message = " ".join(exc.format_message().split())
    return f"{where}: {message} (see '{where} --help')"


def _no_help_panels(typer_app) -> None:
    """A group called without a command reports 'missing command' (one line) instead of printing
    its help panel; `--help` still prints the help."""
    info = getattr(typer_app, "info", None)
    if info is not None:
        info.no_args_is_help = False
    for group in getattr(typer_app, "registered_groups", []):
        group.no_args_is_help = False
        _no_help_panels(group.typer_instance)


def run_cli(app: Callable, register: Callable[[], None]) -> None:
    """Run the typer `app` with sparsim's error contract; never returns."""
    debug = bool(os.environ.get("SPARSIM_DEBUG"))
    if not debug:
        warnings.simplefilter("ignore")
    # sparsim's own warnings (e.g. a .cfg setting it does not model) still print, as one line each.
    from simulator.cli_conventions import print_warnings_as_lines
    from simulator.errors import SparsimWarning
    warnings.simplefilter("always", SparsimWarning)
    print_warnings_as_lines()
    try:
        register()
        _no_help_panels(app)
        code = app(standalone_mode=False)
    except SparsimInputError as exc:
        say_error(exc.one_line())
        code = USAGE_EXIT
    except click_exc.UsageError as exc:
        say_error(usage_error_line(exc))
        code = USAGE_EXIT
    except (Abort, getattr(click_exc, "Abort", Abort)):
        say_error("aborted")
        code = 1
    except click_exc.ClickException as exc:
        say_error(exc.format_message())
        code = exc.exit_code
    except BrokenPipeError:
        sys.stdout = None  # the reader went away (`| head`): nothing more to say
        code = 1
    except OSError as exc:
        if exc.filename is None:
            if debug:
                raise
            say_error(f"internal error: {type(exc).__name__}: {exc} (rerun with SPARSIM_DEBUG=1 for the traceback)")
            code = INTERNAL_EXIT
        else:  # the file system said no (a missing folder, no permission, a full disk): not a bug
            say_error(f"{exc.filename}: cannot access: {exc.strerror or type(exc).__name__} (check the path)")
            code = USAGE_EXIT
    except MemoryError:
        if debug:
            raise
        say_error("out of memory (the workload or design is too large for this machine; shrink it)")
        code = INTERNAL_EXIT
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, not a user mistake
        if debug:
            raise
        say_error(f"internal error: {type(exc).__name__}: {exc} (a bug in sparsim; "
                  "rerun with SPARSIM_DEBUG=1 for the traceback and report it)")
        code = INTERNAL_EXIT
    sys.exit(code if isinstance(code, int) else 0)
