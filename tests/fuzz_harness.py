"""Run one `sparsim` command line in isolation and classify how it ended.

Each case runs in a forked child of the test process (the imports are already warm, so a
case costs milliseconds, not a Python start-up) under an address-space cap and a wall-clock
limit; the parent kills it on timeout. Outcomes:

- `clean`: exit 2 and stderr is exactly one `error: ...` line (naming the file when asked);
- `ok`: exit 0 with every number it printed or wrote finite (no NaN/Infinity, JSON valid);
- `accepted`: exit 0 on an input the case says must be refused;
- `failure`: anything else: a traceback, an internal error (exit 3), several lines, a
  missing file name, a non-finite output; `hang` and `blowup` (memory cap hit) likewise.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 20.0
MEMORY_BYTES = 3 << 30   # what a case may allocate beyond the warm process it is forked from


@dataclasses.dataclass
class Case:
    """One command line. `files` are written under the case folder first (name -> bytes, or None
    for a directory, or "fifo"); `expect` is "error", "ok" or "either"; `names` must appear in an
    error line (the file the mistake is in)."""
    name: str
    argv: list[str]
    files: dict = dataclasses.field(default_factory=dict)
    expect: str = "error"
    names: str | None = None
    outputs: tuple[str, ...] = ()     # files the command writes, checked for non-finite numbers
    writes: str | None = None         # a glob (in the case folder) that must match after a success


@dataclasses.dataclass
class Outcome:
    case: Case
    kind: str          # clean | ok | accepted | failure | hang | blowup
    rc: int | None
    stderr: str
    detail: str = ""
    seconds: float = 0.0


def _prepare(case: Case, folder: Path) -> None:
    for rel, content in case.files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        elif content == "fifo":
            os.mkfifo(path)
        else:
            path.write_bytes(content if isinstance(content, bytes) else str(content).encode())


def _child(case: Case, folder: Path, out_fd: int, err_fd: int, memory_bytes: int) -> None:
    os.setpgid(0, 0)
    os.chdir(folder)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    # a test runner may have replaced sys.stdout/sys.stderr: write to the real (redirected) fds 1 and 2
    sys.stdout = open(1, "w", closefd=False, buffering=1)
    sys.stderr = open(2, "w", closefd=False, buffering=1)
    # the cap is on top of what this (forked, already warm) process has mapped: a test process that
    # imported torch has gigabytes of address space before the case allocates anything
    limit = _mapped_bytes() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.argv = ["sparsim", *case.argv]
    code = 99
    try:
        from simulator.cli import main
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - report, then exit with a code the parent reads as a failure
        import traceback
        traceback.print_exc()
        code = 98
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _mapped_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def run_case(case: Case, workdir: Path | None = None, timeout_s: float = TIMEOUT_S,
             memory_bytes: int = MEMORY_BYTES) -> Outcome:
    """Run `case` in a forked child inside a fresh folder and classify the result."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        folder = Path(tmp)
        _prepare(case, folder)
        out_path, err_path = folder / ".stdout", folder / ".stderr"
        out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT, 0o600)
        err_fd = os.open(err_path, os.O_WRONLY | os.O_CREAT, 0o600)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(case, folder, out_fd, err_fd, memory_bytes)
        os.close(out_fd)
        os.close(err_fd)
        status = None
        while time.monotonic() - started < timeout_s:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.005)
        else:
            _kill_group(pid)
            return Outcome(case, "hang", None, err_path.read_text(errors="replace")[-2000:],
                           f"still running after {timeout_s:.0f} s", time.monotonic() - started)
        seconds = time.monotonic() - started
        rc = os.waitstatus_to_exitcode(status)
        stdout = out_path.read_text(errors="replace")
        stderr = err_path.read_text(errors="replace")
        return classify(case, rc, stdout, stderr, folder, seconds)


def _kill_group(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


_NONFINITE = re.compile(r"(?<![A-Za-z_])(NaN|nan|-?Infinity|-?inf)(?![A-Za-z_])")


_NON_NEGATIVE = re.compile(r"cycles|energy|_pj$|_s$|bytes|macs|power|area")


def _negative(node, key: str = "") -> str | None:
    """The first quantity that must not be negative (cycles, energy, time, bytes) but is."""
    if isinstance(node, dict):
        for k, v in node.items():
            found = _negative(v, str(k))
            if found:
                return found
    elif isinstance(node, list):
        for v in node:
            found = _negative(v, key)
            if found:
                return found
    elif isinstance(node, (int, float)) and not isinstance(node, bool) and node < 0 and _NON_NEGATIVE.search(key):
        return f"negative {key} = {node}"
    elif node is None and _NON_NEGATIVE.search(key):  # a NaN/inf the JSON writer had to drop
        return f"{key} is null (not a number)"
    return None


def nonfinite_in(text: str, json_like: bool) -> str | None:
    """Where `text` (printed or written output) holds NaN/Infinity or a negative quantity, or invalid JSON."""
    if json_like:
        try:
            data = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError as exc:
            return f"invalid JSON ({exc})"
        return _negative(data)
    m = _NONFINITE.search(text)
    return f"'{m.group(0)}' in output" if m else None


def classify(case: Case, rc: int, stdout: str, stderr: str, folder: Path, seconds: float) -> Outcome:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if rc < 0:
        kind = "blowup" if rc == -signal.SIGKILL else "failure"
        return Outcome(case, kind, rc, stderr[-2000:], f"killed by signal {-rc}", seconds)
    if "Traceback" in stderr or rc in (3, 98, 99):
        kind = "blowup" if "out of memory" in stderr or "MemoryError" in stderr else "failure"
        return Outcome(case, kind, rc, stderr[-2000:], "traceback or internal error", seconds)
    if rc == 2:
        if len(lines) != 1 or not lines[0].startswith("error: "):
            return Outcome(case, "failure", rc, stderr[-2000:], f"{len(lines)} stderr lines, not one error line",
                           seconds)
        if case.names and case.names not in lines[0]:
            return Outcome(case, "failure", rc, stderr, f"error line does not name '{case.names}'", seconds)
        return Outcome(case, "clean", rc, stderr, "", seconds)
    if rc == 0:
        problem = nonfinite_in(stdout, "--json" in case.argv)
        for rel in case.outputs:
            path = folder / rel
            if path.is_file() and path.suffix in (".json", ".csv"):
                problem = problem or nonfinite_in(path.read_text(errors="replace"), path.suffix == ".json")
        if lines and any(not ln.startswith(("note", "wrote", "warning")) for ln in lines):
            problem = problem or f"exit 0 but stderr says: {lines[0][:200]}"
        if case.writes and not list(folder.glob(case.writes)):
            problem = problem or f"nothing written matching {case.writes} in the case folder"
        if problem:
            return Outcome(case, "failure", rc, stderr[-2000:], problem, seconds)
        return Outcome(case, "accepted" if case.expect == "error" else "ok", rc, stderr, "", seconds)
    return Outcome(case, "failure", rc, stderr[-2000:], f"exit code {rc}", seconds)


def summarize(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.kind] = counts.get(o.kind, 0) + 1
    return counts


def report(outcomes: list[Outcome], kinds=("failure", "hang", "blowup", "accepted")) -> str:
    out = []
    for o in outcomes:
        if o.kind in kinds:
            tail = o.stderr.strip().splitlines()[-1:] or [""]
            out.append(f"[{o.kind}] {o.case.name}: {o.detail} | {' '.join(o.case.argv)[:160]} | {tail[0][:300]}")
    return "\n".join(out)


def finite(x) -> bool:
    return not isinstance(x, float) or math.isfinite(x)


def warm() -> None:
    """Import every command module and run each engine once in this process, so forked cases
    start warm (numba kernels compiled, modules imported) and cost milliseconds."""
    import warnings

    from simulator.cli import _register_commands
    from simulator.engines import ENGINE_KINDS  # noqa: F401
    from simulator.simulate import simulate
    from simulator.spec import load_arch
    from simulator.trace import load_trace
    _register_commands()
    import analysis.sweep  # noqa: F401
    import analysis.sweep_spec  # noqa: F401
    import workloads.extract.hf_config  # noqa: F401
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trace = load_trace(REPO / "workloads/traces/sparse_layers_70pct_unstructured.yaml")
        for arch in sorted((REPO / "arch_configs").glob("*.yaml")):
            try:
                simulate(trace, load_arch(arch))
            except Exception:  # noqa: BLE001 - warming only; the cases report real failures
                pass
