"""schemathesis, a fuzzer this project did not write, against ``eventpipe dev`` (real broker,
ClickHouse engine and export store) with valid credentials, driven by ``GET /api/schema``: every
operation the schema lists is tested, so endpoints added later are covered once they are in it.

Phases: coverage, fuzzing and stateful (which follows the schema's links, e.g. from a started
export to polling it). Checks: no 5xx; only documented statuses, content types and bodies;
invalid input refused with a 4xx; credentials required everywhere; 405 for other methods.
``make test`` runs a short pass, ``make fuzz`` a long one; each run draws a new seed and prints
it, and ``FUZZ_SEED=<seed>`` replays a failing run.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.dev_stack_support import EVENTPIPE, DevStack

# Wall-clock budget of the run: schemathesis repeats fuzzing and stateful runs until it is spent.
SECONDS = int(os.environ.get("FUZZ_SECONDS", "70"))
# Test cases per operation and phase round; the budget, not this, bounds the run.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
# `make fuzz` asks for at least this many generated cases.
MIN_CASES = int(os.environ.get("FUZZ_MIN_CASES", "1"))
SCHEMATHESIS = Path(sys.executable).with_name("st")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    # Every operation refuses a request without credentials, and answers 405 to other methods.
    "ignored_auth",
    "unsupported_method",
)
USER, PASSWORD = "fuzzer", "fuzzer-password"


def _eventpipe(stack: DevStack, *args: str) -> None:
    subprocess.run(
        [EVENTPIPE, *args, "--data-dir", str(stack.data_dir)], check=True, capture_output=True
    )


def _run_schemathesis(stack: DevStack, seed: int, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{stack.url}/api/schema",
        "--auth",
        f"{USER}:{PASSWORD}",
        "--phases",
        "coverage,fuzzing,stateful",
        "--mode",
        "all",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES),
        "--max-time",
        str(SECONDS),
        "--seed",
        str(seed),
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=SECONDS + 120, cwd=report.parent
    )


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 240)
def test_a_fuzzer_driven_by_the_schema_gets_no_server_error_and_only_documented_answers(
    start_stack: Callable[[], DevStack], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = int(os.environ.get("FUZZ_SEED") or secrets.randbelow(2**31))
    with capsys.disabled():
        print(f"\nschemathesis seed {seed} (replay with FUZZ_SEED={seed})", flush=True)
    stack = start_stack()
    stack.wait_ready()
    _eventpipe(stack, "users", "add", USER, "--password", PASSWORD)
    # A member of an organization, so org selectors naming it resolve as well as fail.
    _eventpipe(stack, "orgs", "add", "acme")
    _eventpipe(stack, "orgs", "add-member", "acme", USER, "--role", "supervisor")

    started = time.monotonic()
    result = _run_schemathesis(stack, seed, tmp_path / "schemathesis.json")
    elapsed = time.monotonic() - started
    report: dict[str, Any] = json.loads((tmp_path / "schemathesis.json").read_text())
    cases = report["test_cases"]
    undocumented = sum(f["count"] for f in report["failures"] if f["code"] == "ST103")
    server_errors = sum(f["count"] for f in report["failures"] if f["code"] == "ST101")
    with capsys.disabled():
        print(
            f"schemathesis seed {seed}: {cases['generated']} cases in {elapsed:.0f} s, "
            f"{len(report['failures'])} kinds of failure ({server_errors} server errors, "
            f"{undocumented} undocumented statuses), {len(report['errors'])} errors",
            flush=True,
        )
    output = f"seed {seed} (FUZZ_SEED={seed} replays it)\n{result.stdout[-6000:]}{result.stderr}"
    assert report["operations"]["tested"] == report["operations"]["total"] > 0, output
    assert report["failures"] == [], output
    assert report["errors"] == [], output
    assert result.returncode == 0, output
    assert cases["generated"] >= MIN_CASES, output
    # Not a vacuous pass: the credentials worked, and valid requests got through.
    assert report["warnings"]["missing_auth"] == [], output
    accepted = sum(
        phase["accepted"] for rates in report["valid_rates"].values() for phase in rates.values()
    )
    assert accepted > 0, output
    # The stack lived through it.
    assert stack.process.poll() is None, stack.log()
