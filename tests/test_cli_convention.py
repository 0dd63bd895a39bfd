"""One CLI convention across every command: help on every option, one meaning per short flag,
-q/--quiet and --json where a command prints results, no '<bool>' after plain flags in help."""

import pytest
import typer

from cli_helpers import run_cli
from simulator.cli import _register_commands, app

_register_commands()
ROOT_COMMAND = typer.main.get_command(app)
from conftest import ROOT

ROOT_MEASURED = ROOT / "analysis" / "measured"
NO_QUIET = {"list"}                          # exists only to print
NO_JSON = {"plot pareto", "plot breakdown", "plot roofline", "plot compare"}   # print only the files written


def _commands(group=ROOT_COMMAND, path=()):
    for name, sub in getattr(group, "commands", {}).items():
        if getattr(sub, "commands", None):
            yield from _commands(sub, path + (name,))
        else:
            yield " ".join(path + (name,)), sub


COMMANDS = dict(_commands())


def _opts(command):
    return {o for p in command.params for o in (*p.opts, *getattr(p, "secondary_opts", []))}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_and_argument_has_help(name):
    missing = [p.opts[0] for p in COMMANDS[name].params if not (getattr(p, "help", None) or "").strip()]
    assert not missing, f"{name}: no help text for {missing}"


def test_a_short_flag_means_one_thing_everywhere():
    meaning: dict[str, set[str]] = {}
    for command in COMMANDS.values():
        for p in command.params:
            longs = [o for o in p.opts if o.startswith("--")]
            for o in p.opts:
                if not o.startswith("--") and o.startswith("-"):
                    meaning.setdefault(o, set()).update(longs)
    clashes = {k: v for k, v in meaning.items() if len(v) > 1}
    assert not clashes


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_quiet_and_json_wherever_results_are_printed(name):
    opts = _opts(COMMANDS[name])
    if name not in NO_QUIET:
        assert {"-q", "--quiet"} <= opts, name
    if name not in NO_JSON:
        assert "--json" in opts, name


@pytest.mark.parametrize("name", ["simulate", "measure", "extract hf-config", "plot compare", "validate-gpu"])
def test_help_shows_no_bool_after_plain_flags(capsys, name):
    code, out, _ = run_cli(capsys, *name.split(), "--help")
    assert code == 0 and "<bool>" not in out and "--quiet" in out


def test_torch_densities_are_text_like_hf_config(capsys):
    code, _, err = run_cli(capsys, "extract", "torch", "--kv", "2:4")
    assert code == 2 and err.startswith("error: --kv: '2:4' is not a density")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_every_out_takes_the_formats_simulate_takes(capsys, tmp_path, suffix):
    from conftest import ARCH_DIR, TRACE_DIR
    target = tmp_path / f"rows{suffix}"
    code, _, err = run_cli(capsys, "system", "-a", ARCH_DIR / "edge_npu_32x32_os.yaml", "--cores", 2,
                           "-w", TRACE_DIR / "resnet18.yaml", "--out", target, "-q")
    assert code == 0 and target.stat().st_size > 0, err
    measured = ROOT_MEASURED / "mi210_llmcompass_fp16.csv"
    report = tmp_path / f"cc{suffix}"
    code, _, err = run_cli(capsys, "crosscheck", "-a", "gpu_mi210", "--measured", measured, "--out", report, "-q")
    assert code == 0 and report.stat().st_size > 0, err


def test_one_install_hint_wording():
    from simulator.errors import install_hint, missing_extra
    assert install_hint("dask") == "pip install 'sparsim[dask]'"
    assert missing_extra("report", "plotly", "sparsim report").one_line().endswith("(pip install 'sparsim[report]')")
