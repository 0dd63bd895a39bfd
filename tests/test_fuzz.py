"""Fuzz: malformed inputs for every reader and subcommand, and mutations of every shipped file.

Every case runs forked under a memory cap and a time limit (tests/fuzz_harness.py) and must
end as a clean one-line error (exit 2) or a success with finite outputs; a traceback, an
internal error, several stderr lines, a hang or a memory blow-up fails the test, and so does
an input the case says must be refused but that was accepted.

The default run covers every hand-made semantic case and a rotating third of the
reader x broken-file matrix (each broken-file kind reaches several readers, each reader
several kinds), plus a few mutations per family; `-m slow` runs the whole matrix and many
more mutations.
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from fuzz_cases import (BROKEN, READERS, arch_value_cases, extract_cases, extreme_valid_cases, more_cases,
                        reader_cases, semantic_bundle, sweep_cases, system_cases, trace_value_cases, usage_cases)
from fuzz_harness import report, run_case, summarize, warm
from fuzz_mutate import FAMILIES, mutation_cases
from fuzz_surfaces import cfg_cases, list_cases, mapping_cases, name_cases, report_cases, surface_bundle, train_cases

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32",
                                reason="cases run in forked children under resource limits")

BAD = ("failure", "hang", "blowup", "accepted")


@pytest.fixture(scope="module", autouse=True)
def _warm():
    warm()


def _run_all(cases):
    outcomes = [run_case(c) for c in cases]
    bad = [o for o in outcomes if o.kind in BAD]
    assert not bad, f"{summarize(outcomes)}\n{report(outcomes)}"
    return outcomes


def _rotating_third(cases):
    kinds = list(BROKEN) + ["missing", "dev_zero", "newline_name"]
    readers = list(READERS)
    keep = []
    for c in cases:
        reader, kind = c.name.split("/", 1)
        if (readers.index(reader) + kinds.index(kind)) % 3 == 0:
            keep.append(c)
    return keep


def test_broken_files_for_every_reader_are_one_clean_error():
    cases = _rotating_third(reader_cases())
    assert {c.name.split("/", 1)[1] for c in cases} == set(BROKEN) | {"missing", "dev_zero", "newline_name"}
    _run_all(cases)


@pytest.mark.parametrize("family", [arch_value_cases, trace_value_cases, system_cases, sweep_cases, extract_cases,
                                    usage_cases, extreme_valid_cases, more_cases], ids=lambda f: f.__name__)
def test_semantic_cases(family):
    _run_all(family())


@pytest.mark.parametrize("family", [cfg_cases, mapping_cases, train_cases, report_cases, list_cases, name_cases],
                         ids=lambda f: f.__name__)
def test_new_surface_cases(family):
    """.cfg archs, compute.mapping, `train`, `report`, `list` and odd shipped names (tests/fuzz_surfaces.py)."""
    _run_all(family())


def test_every_case_kind_is_generated():
    names = {c.name for c in reader_cases() + semantic_bundle() + surface_bundle()}
    assert len(names) >= 800
    for kind in ("not_utf8", "directory", "fifo", "deep_lists", "alias_bomb", "duplicate_keys", "dev_zero",
                 "newline_name"):
        assert any(n.endswith("/" + kind) for n in names)


# no shrinking: a hang costs the full time limit per try; the report names the mutation instead
_PHASES = (Phase.explicit, Phase.reuse, Phase.generate)
_FEW = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                phases=_PHASES)
_MANY = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                 phases=_PHASES)


def _check_mutation(case):
    outcome = run_case(case)
    assert outcome.kind not in ("failure", "hang", "blowup"), report([outcome])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_mutated_shipped_files(family):
    _FEW(given(case=mutation_cases(family))(_check_mutation))()


@pytest.mark.slow
def test_the_whole_reader_matrix():
    _run_all(reader_cases())


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_many_mutated_shipped_files(family):
    _MANY(given(case=mutation_cases(family))(_check_mutation))()
