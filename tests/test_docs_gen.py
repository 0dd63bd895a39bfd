"""docs/spec.md, docs/trace.md and docs/schema/*.json are generated from the models and must be current."""

import json

import pytest

from simulator import docs_gen
from simulator.engines import ENGINE_KINDS, load_engine
from simulator.spec import Arch, MemoryLevel
from simulator.trace import Op, Trace


def test_generated_docs_are_current():
    stale = [str(p) for p, text in docs_gen.outputs().items() if not p.exists() or p.read_text() != text]
    assert not stale, f"stale generated docs {stale}: run `{docs_gen.COMMAND}`"


@pytest.mark.parametrize("model", [Arch, MemoryLevel, *(load_engine(k).ComputeSpec for k in ENGINE_KINDS)])
def test_every_spec_field_is_documented(model):
    text = (docs_gen.DOCS / "spec.md").read_text()
    for name in model.model_fields:
        assert f"| `{name}` |" in text, name


@pytest.mark.parametrize("model", [Trace, Op])
def test_every_trace_field_is_documented(model):
    text = (docs_gen.DOCS / "trace.md").read_text()
    for name in model.model_fields:
        assert f"| `{name}` |" in text, name


def test_arch_schema_offers_every_engine_and_units_follow_names():
    schema = json.loads((docs_gen.DOCS / "schema" / "arch.schema.json").read_text())
    assert {f"compute.{k}" for k in ENGINE_KINDS} <= set(schema["$defs"])
    assert docs_gen.field_unit("clock_mhz") == "MHz" and docs_gen.field_unit("read_energy_pj_per_bit") == "pJ/bit"
    assert docs_gen.field_unit("sram_mm2_per_kib") == "mm^2/KiB"


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch):
    monkeypatch.setattr(docs_gen, "DOCS", tmp_path)
    monkeypatch.setattr(docs_gen, "outputs", lambda: {tmp_path / "spec.md": "new\n"})
    (tmp_path / "spec.md").write_text("old\n")
    assert docs_gen.main(["--check"]) == 1
    assert docs_gen.main([]) == 0 and (tmp_path / "spec.md").read_text() == "new\n"
    assert docs_gen.main(["--check"]) == 0
