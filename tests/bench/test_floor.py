"""The floor benchmark's pure parts: its work spec, its loops, the CPU a stage burns."""

from __future__ import annotations

import time

import pytest

from bench._floor_stages import FUSED, STAGES, burn, loops_of
from bench.floor import work_of


def test_a_work_spec_gives_microseconds_by_stage() -> None:
    assert work_of("") == {}
    assert work_of(" , ") == {}
    assert work_of("plan=140, execute=180.5,project=300") == {
        "plan": 140.0,
        "execute": 180.5,
        "project": 300.0,
    }


@pytest.mark.parametrize("spec", ["plan", "planner=3", "plan=fast"])
def test_a_bad_work_spec_is_refused_with_what_is_expected(spec: str) -> None:
    with pytest.raises(ValueError, match="expected 'stages' and/or stage=microseconds pairs"):
        work_of(spec)


def test_the_fused_loop_is_ingest_to_execute_in_order() -> None:
    assert loops_of(False) == [(i,) for i in range(len(STAGES))]
    assert loops_of(True) == [FUSED]
    assert [STAGES[i][0] for i in FUSED] == ["ingest", "validate", "prioritise", "plan", "execute"]


def test_burn_spends_the_cpu_it_is_asked_for() -> None:
    started = time.thread_time()
    burn(20_000)  # 20 ms
    spent = time.thread_time() - started
    assert 0.020 <= spent < 0.5
    started = time.thread_time()
    burn(0)
    assert time.thread_time() - started < 0.005
