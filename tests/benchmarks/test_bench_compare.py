"""``eventpipe bench compare``: two suite reports agree when every ratio is within the tolerance."""

from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.compare import compare_ratios, format_comparison, load_ratios, suite_ratios
from eventpipe.errors import CommandError
from eventpipe_cli.cli import main


def report(e2e_at_64: float = 0.27, export_vs_raw: float = 0.75) -> dict[str, Any]:
    ingest = [
        {
            "concurrency": level,
            "ratio_acknowledged_to_raw_produce": 0.05 + level / 1000,
            "ratio_end_to_end_to_raw_insert": e2e_at_64 if level == 64 else 0.25,
        }
        for level in (1, 4, 16, 64)
    ]
    export = {"export_vs_raw_rate": export_vs_raw, "export_vs_naive_rate": 4.9}
    return {"ingest": ingest, "export": export}


def suite(e2e_at_64: float = 0.27, export_vs_raw: float = 0.75) -> dict[str, float | None]:
    return suite_ratios(report(e2e_at_64, export_vs_raw))


def test_reports_within_the_tolerance_agree_and_name_their_largest_difference() -> None:
    comparison = compare_ratios(suite(export_vs_raw=0.682), suite(export_vs_raw=0.754), 15)
    assert comparison["agree"] is True
    assert comparison["largest_apart_percent"] == 10.6
    assert len(comparison["ratios"]) == 10
    assert "| export / raw query | 0.682 | 0.754 | 10.6% |" in format_comparison(comparison)


def test_a_ratio_beyond_the_tolerance_is_named_whichever_report_comes_first() -> None:
    fast, slow = suite(e2e_at_64=0.305), suite(e2e_at_64=0.224)
    for first, second in ((fast, slow), (slow, fast)):
        comparison = compare_ratios(first, second, 15)
        assert comparison["agree"] is False
        assert comparison["largest_apart_percent"] == 36.2
        over = [row["ratio"] for row in comparison["ratios"] if row["apart_percent"] > 15]
        assert over == ["e2e / raw insert, 64 connections"]
        assert "do not agree within 15%" in format_comparison(comparison)


def test_reports_of_different_levels_are_not_compared() -> None:
    shorter = report()
    shorter["ingest"] = shorter["ingest"][:3]
    with pytest.raises(CommandError, match="64 connections"):
        compare_ratios(suite(), suite_ratios(shorter), 15)


def test_a_ratio_missing_from_a_report_is_named() -> None:
    against_a_gateway_of_its_own = report()
    # A run with --url has no end-to-end figure.
    against_a_gateway_of_its_own["ingest"][0]["ratio_end_to_end_to_raw_insert"] = None
    with pytest.raises(CommandError, match="e2e / raw insert, 1 connection is missing"):
        compare_ratios(suite(), suite_ratios(against_a_gateway_of_its_own), 15)


def test_reading_a_missing_or_foreign_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="eventpipe bench --output"):
        load_ratios(tmp_path / "bench-report.json")
    for name, foreign in (
        ("rows.json", {"rows": 3}),
        ("list.json", [1, 2]),
        ("ingest-only.json", {"ingest": [{"concurrency": 1}], "export": {}}),
    ):
        (tmp_path / name).write_bytes(orjson.dumps(foreign))
        with pytest.raises(CommandError, match="not a report of every stage"):
            load_ratios(tmp_path / name)
    with pytest.raises(CommandError, match="cannot read"):
        load_ratios(tmp_path)
    (tmp_path / "broken.json").write_bytes(b"{")
    with pytest.raises(CommandError, match="not a JSON report"):
        load_ratios(tmp_path / "broken.json")


def test_the_command_exits_1_when_the_reports_do_not_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_bytes(orjson.dumps(report(e2e_at_64=0.305)))
    second.write_bytes(orjson.dumps(report(e2e_at_64=0.224)))
    assert main(["bench", "compare", "--reports", str(first), str(second)]) == 1
    assert "largest difference is 36.2%" in capsys.readouterr().out
    assert main(["bench", "compare", "--reports", str(first), str(first), "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["agree"] is True


def test_compare_without_reports_says_how_to_call_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "compare"]) == 1
    assert "compare needs --reports FIRST.json SECOND.json" in capsys.readouterr().err
