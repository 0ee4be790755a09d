"""`make bench`'s registry and renderer: what they promise without running a benchmark.

The registry names only benchmarks that exist or are marked optional, each with a distinct result
file, and every committed result of it is in the common shape; the renderer writes a result in the
common shape between the markers of RESULTS.md and leaves the prose around them as it was.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from bench import browser, browser_protocol, report, suite
from bench.harness import RESULTS, CommandCost, RedisCounters, invocation

PROSE_BEFORE = "# Benchmark results\n\nHand-written prose, kept | as it is.\n"
PROSE_AFTER = "\n## Written after the markers\n\nAlso kept.\n"


def fixture_result() -> dict[str, object]:
    """A result as bench.harness.result() shapes it (written out: no machine facts are read here)."""
    return {
        "bench": "queue_core",
        "title": "Queue core beside its peers",
        "machine": {"cpu": "Some CPU", "cores": 2, "redis": "7.0.15", "playwright": None},
        "date": "2026-12-06 10:00 UTC",
        "settings": {"jobs": 100, "rounds": 1},
        "columns": None,
        "rows": [
            {"peer": "bullmq-node x1", "jobs_per_s": 17400.2, "redis_cpu_us_per_job": 41.0, "note": ""},
            {"peer": "sentinel x2", "jobs_per_s": None, "note": "missing (bench.sentinel_core does not exist yet)"},
        ],
        "ratios": {"taskiq x2 / bullmq-node x1: jobs/s": 0.18},
        "raw": [{"nested": "not a column"}],
    }


def entry() -> report.Entry:
    return report.Entry("bench/results/queue_core.json", "python -m bench.queue_core", fixture_result())


def test_the_registry_names_modules_that_exist_or_are_optional() -> None:
    for bench in suite.SUITE:
        assert bench.exists() or bench.optional, f"{bench.module} does not exist and is not marked optional"
    names = [b.name for b in suite.SUITE]
    assert len(names) == len(set(names)), "two benchmarks would write the same result file"
    assert {"queue_core", "submit", "latency", "subscribers", "browser", "retention", "fair_share", "shards"} <= set(
        names
    )


def test_every_committed_result_of_the_suite_is_in_the_common_shape() -> None:
    for found in suite.entries(RESULTS):
        result = found.result
        assert {"bench", "title", "machine", "date", "settings", "rows", "ratios"} <= set(result), found.source
        assert result["rows"], f"{found.source} has no rows"
        assert "not in the common shape" not in report.render(found)


def test_a_browser_round_is_read_against_the_raw_rounds_either_side() -> None:
    # raw, this tree, raw, the compared tree, raw: each Sentinel round sits between two raw rounds.
    run = {
        "jobs_per_s": {"sentinel": [1.0], "sentinel@abc": [0.5], "raw": [2.0, 4.0, 1.0]},
        "medians": {"sentinel": 1.0, "sentinel@abc": 0.5, "raw": 2.0},
        "ratios": {"sentinel": [1 / 3], "sentinel@abc": [0.5 / 2.5]},
    }
    rows = browser.bracketed_rows(run, label=1)
    assert [(r["run"], r["round"], r["executor"], r["raw_jobs_per_s"]) for r in rows] == [
        (1, 1, "sentinel", 3.0),
        (1, 1, "sentinel@abc", 2.5),
    ]
    ratios = browser.bracketed_ratios([run])
    assert ratios["sentinel / raw, median"] == pytest.approx(1 / 3)
    assert ratios["sentinel / sentinel@abc, median ratio to raw"] == pytest.approx((1 / 3) / 0.2)


def test_a_result_says_the_command_that_made_it_and_the_suite_reports_that_one(tmp_path: Path) -> None:
    argv = ["/src/bench/browser.py", "--rounds", "6", "--json", "/tmp/out.json", "--peers", "--json=/tmp/x"]
    assert invocation(argv) == "python -m bench.browser --rounds 6 --peers"

    made = {**fixture_result(), "command": "python -m bench.queue_core --rounds 5"}
    (tmp_path / "queue_core.json").write_text(json.dumps(made))
    (tmp_path / "submit.json").write_text(json.dumps({**fixture_result(), "bench": "submit"}))  # older: none
    commands = {e.result["bench"]: e.command for e in suite.entries(tmp_path)}
    assert commands == {
        "queue_core": "python -m bench.queue_core --rounds 5",
        "submit": next(b for b in suite.SUITE if b.name == "submit").command(),
    }


def test_an_unknown_benchmark_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SystemExit, match="queue_core"):
        suite.by_name(["no_such_bench"])


def test_a_result_renders_between_the_markers_and_the_prose_stays(tmp_path: Path) -> None:
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text(PROSE_BEFORE)

    report.update(results_md, [entry()])
    first = results_md.read_text()
    assert first.startswith(PROSE_BEFORE)
    section = first[first.index(report.START) : first.index(report.END)]
    assert "### Queue core beside its peers" in section
    assert "| peer | jobs per s | redis cpu us per job | note |" in section
    assert "| bullmq-node x1 | 17,400 | 41.0 | — |" in section
    assert "| sentinel x2 | — | — | missing (bench.sentinel_core does not exist yet) |" in section
    assert "| taskiq x2 / bullmq-node x1: jobs/s | 0.18 |" in section
    assert "nested" not in section
    assert "**Machine** (newest run, 2026-12-06 10:00 UTC): cpu Some CPU, cores 2, redis 7.0.15." in section

    # Prose written after the markers survives the next run, and the section is replaced, not appended.
    results_md.write_text(first + PROSE_AFTER)
    report.update(results_md, [entry()])
    second = results_md.read_text()
    assert second.startswith(PROSE_BEFORE) and second.endswith(PROSE_AFTER)
    assert second.count(report.START) == 1 and second.count("### Queue core beside its peers") == 1


def test_a_result_from_another_machine_names_it_under_its_heading() -> None:
    older = {**fixture_result(), "bench": "shards", "title": "Shards", "date": "2026-11-28"}
    older["machine"] = {"cpu": "Other CPU", "cores": 2}
    section = report.render_all([entry(), report.Entry("bench/results/shards.json", "python -m bench.shards", older)])
    top, shards = section.split("### Shards")
    assert "**Machine** (newest run, 2026-12-06 10:00 UTC): cpu Some CPU" in top
    assert "Machine: cpu Other CPU, cores 2." in shards
    assert "Machine: cpu Some CPU" not in top  # the newest result's machine is said once, at the top


def test_a_result_outside_the_common_shape_is_named_not_rendered() -> None:
    legacy = report.Entry("bench/results/old.json", "python -m bench.old", {"runs": [1, 2]})
    assert "not in the common shape" in report.render(legacy)


def test_redis_counters_give_per_job_costs() -> None:
    before = RedisCounters(cpu_s=1.0, commands={"xack": CommandCost(10, 20)})
    after = RedisCounters(cpu_s=1.5, commands={"xack": CommandCost(1010, 2020), "evalsha": CommandCost(2000, 80_000)})
    cost = after.minus(before).per_job(1000)
    assert cost.cpu_us == pytest.approx(500)
    assert cost.commands["xack"] == CommandCost(1, 2)
    assert cost.commands["evalsha"] == CommandCost(2, 80)
    assert cost.command_us == pytest.approx(82)
    assert cost.top(1) == "evalsha ×2 = 80µs"


def test_playwright_debug_lines_are_counted_by_kind_and_method() -> None:
    log = "\n".join(
        [
            '2026-12-07T09:51:18.860Z pw:protocol SEND ► {"id":1,"method":"Browser.getVersion"}',
            '2026-12-07T09:51:19.452Z pw:protocol ◀ RECV {"id":1,"result":{"request":{"method":"GET"}}}',
            '2026-12-07T09:51:19.739Z pw:protocol ◀ RECV {"method":"Target.attachedToTarget","params":{}}',
            '2026-12-07T09:51:19.740Z pw:protocol ◀ RECV {"method":"Target.attachedToTarget","params":{}}',
            'pw:channel SEND> {"id": "lssf@1", "guid": "", "method": "initialize", "params": {}}',
            'pw:channel <RECV {"id": "lssf@1", "result": {"playwright": {"guid": "Playwright"}}}',
            '2026-12-07T09:51:18.680Z pw:channel <EVENT {"guid":"","method":"__create__","params":{}}',
            "a line of the executor's own log",
        ]
    )
    assert browser_protocol.tally(log) == {
        "cdp send Browser.getVersion": 1,
        "cdp reply": 1,  # its result's own "method" does not make it an event
        "cdp event Target.attachedToTarget": 2,
        "channel call initialize": 1,
        "channel event __create__": 1,
    }


def test_protocol_rows_keep_the_kinds_that_differ_and_the_totals() -> None:
    sides = {
        "sentinel": collections.Counter({"cdp send A": 20, "cdp send B": 40, "channel call C": 10}),
        "raw": collections.Counter({"cdp send A": 20, "cdp send B": 20}),
    }
    rows = browser_protocol.rows_of(sides, 10)
    assert rows == [
        {"message": "cdp send B", "sentinel": 4.0, "raw": 2.0},
        {"message": "channel call C", "sentinel": 1.0, "raw": 0.0},
        {"message": "all cdp messages", "sentinel": 6.0, "raw": 4.0},
        {"message": "all channel messages", "sentinel": 1.0, "raw": 0.0},
    ]
