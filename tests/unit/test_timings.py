"""Where a run's time went: stage durations add up per stage, suite events are seconds since
the run started, and the log line says it in one line."""

from __future__ import annotations

import threading

import pytest

from immu_action.core.timings import Timeline, timings_line


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stages_add_up_and_suite_events_count_from_the_start() -> None:
    clock = Clock()
    t = Timeline(clock)
    clock.now += 0.5
    t.enter("build")
    clock.now += 2.0
    t.enter("tests")
    t.suite("unit", "started")
    clock.now += 1.25
    t.suite("unit", "ended")
    t.enter("build")  # entered again: adds to its time
    clock.now += 0.5
    t.close()
    clock.now += 9  # after close nothing is counted
    assert t.as_dict() == {
        "total_s": 13.25,
        "stages": {"build": 2.5, "tests": 1.25},
        "suites": {"unit": {"started_s": 2.5, "ended_s": 3.75}},
    }


def test_an_unknown_suite_event_is_a_bug() -> None:
    with pytest.raises(AssertionError):
        Timeline().suite("unit", "finished")


def test_workers_mark_at_once() -> None:
    t = Timeline()
    threads = [threading.Thread(target=lambda n=n: t.suite(f"s{n}", "started"))
               for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(t.as_dict()["suites"]) == sorted(f"s{n}" for n in range(20))


def test_the_log_line_names_each_stage_and_each_suites_wait_and_run() -> None:
    line = timings_line({
        "total_s": 4.8, "stages": {"build": 0.31, "tests": 4.2, "attest": 0.001},
        "suites": {"unit": {"started_s": 0.5, "ended_s": 1.5},
                   "api": {"services_ready_s": 2.9, "started_s": 2.9, "ended_s": 4.1}}})
    assert line == ("timings: build 0.3s, tests 4.2s (unit: ran 0.5-1.5s, api: services ready "
                    "at 2.9s, ran 2.9-4.1s); 4.8s in all")  # attest (under 0.05 s) left out
    failed = timings_line({"total_s": 1.0, "stages": {"tests": 0.9},
                           "suites": {"api": {"services_ready_s": 0.8}}})
    assert "api: services ready at 0.8s, did not run" in failed
