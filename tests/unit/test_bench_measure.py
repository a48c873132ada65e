"""The bench's interleaving and ratio arithmetic (the figures themselves are never asserted)."""

from __future__ import annotations

from bench.measure import CpuSample, cpu_spent, interleave, ratio_summary


def test_interleave_alternates_the_measures_round_by_round():
    calls: list[str] = []

    def a(r: int) -> dict[str, object]:
        calls.append(f"A{r}")
        return {"r": r}

    def b(r: int) -> dict[str, object]:
        calls.append(f"B{r}")
        return {"r": r}

    first, second = interleave(3, a, b)
    assert calls == ["A0", "B0", "A1", "B1", "A2", "B2"]
    assert [x["r"] for x in first] == [0, 1, 2] and [x["r"] for x in second] == [0, 1, 2]


def test_ratio_summary_is_the_median_of_rounds_with_its_spread():
    summary = ratio_summary([0.5, 0.4, 0.6])
    assert summary["median"] == 0.5
    assert (summary["min"], summary["max"]) == (0.4, 0.6)
    assert summary["spread"] == 0.5  # 0.6 / 0.4 - 1
    assert summary["rounds"] == [0.5, 0.4, 0.6]


def test_cpu_spent_counts_new_processes_from_zero_and_never_goes_negative():
    before = CpuSample(web={1: 1.0, 2: 2.0}, database={10: 5.0})
    after = CpuSample(web={1: 1.5, 2: 2.0, 3: 0.25}, database={10: 4.0, 11: 1.0})
    web, database = cpu_spent(before, after)
    assert web == 0.75
    assert database == 1.0  # a reused pid reading lower counts as nothing, not negative
