"""schemathesis, a fuzzer this project did not write, against ``eventpipe dev`` (real broker,
ClickHouse engine and export store) with valid credentials, driven by the ``GET /api/schema`` of
the public API and that of the intake for CVAT's server: every operation a schema lists is
tested, so endpoints added later are covered once they are in it.

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

from eventpipe_cli.embedded_broker import free_port
from tests.e2e.conftest import FUZZ_LINE
from tests.e2e.dev_stack_support import DevStack

# Wall-clock budget of the run: schemathesis repeats fuzzing and stateful runs until it is spent.
SECONDS = int(os.environ.get("FUZZ_SECONDS", "70"))
INTAKE_SECONDS = int(os.environ.get("FUZZ_INTAKE_SECONDS", "20"))
# Test cases per operation and phase round; the budget, not this, bounds the run.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
# `make fuzz` asks for at least this many generated cases.
MIN_CASES = int(os.environ.get("FUZZ_MIN_CASES", "1"))
INTAKE_MIN_CASES = int(os.environ.get("FUZZ_INTAKE_MIN_CASES", "1"))
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
# Statuses that count as refusing invalid input: schemathesis' defaults plus 413, the documented
# answer to a batch over its maxItems. The intake's documented 200 for a batch holding invalid
# events needs no entry here: its schema declares each element as "an event, or any other object
# (dead-lettered)", so such a batch is valid input, and the check stays strict about what is not
# (a body that is not an array of objects must still be refused).
NEGATIVE_DATA_REFUSALS = "400 401 403 404 405 406 409 413 415 422 428 429 5xx".split()
USER, PASSWORD = "fuzzer", "fuzzer-password"
INTAKE_USER, INTAKE_PASSWORD = "cvat", "cvat-intake-password"


def _seed(record_property: Callable[[str, object], None]) -> int:
    seed = int(os.environ.get("FUZZ_SEED") or secrets.randbelow(2**31))
    # Recorded, not printed: under pytest-xdist a worker's output never reaches the terminal, a
    # report's properties do (tests/e2e/conftest.py prints them after the run).
    record_property(FUZZ_LINE, f"schemathesis seed {seed} (replay with FUZZ_SEED={seed})")
    return seed


def _fuzz(
    schema_url: str,
    credentials: str,
    seconds: int,
    seed: int,
    workdir: Path,
    record_property: Callable[[str, object], None],
) -> tuple[dict[str, Any], str]:
    """Run schemathesis on ``schema_url``; its JSON report, and its output for assertions."""
    config = workdir / "schemathesis.toml"
    config.write_text(
        "[checks.negative_data_rejection]\n"
        f"expected-statuses = {json.dumps(NEGATIVE_DATA_REFUSALS)}\n"
    )
    report_path = workdir / "schemathesis.json"
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        schema_url,
        "--auth",
        credentials,
        "--phases",
        "coverage,fuzzing,stateful",
        "--mode",
        "all",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES),
        "--max-time",
        str(seconds),
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
        str(report_path),
    ]
    started = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 120, cwd=workdir
    )
    elapsed = time.monotonic() - started
    report: dict[str, Any] = json.loads(report_path.read_text())
    cases = report["test_cases"]
    undocumented = sum(f["count"] for f in report["failures"] if f["code"] == "ST103")
    server_errors = sum(f["count"] for f in report["failures"] if f["code"] == "ST101")
    record_property(
        FUZZ_LINE,
        f"schemathesis seed {seed} on {schema_url}: {cases['generated']} cases in "
        f"{elapsed:.0f} s, {len(report['failures'])} kinds of failure ({server_errors} "
        f"server errors, {undocumented} undocumented statuses), {len(report['errors'])} errors",
    )
    output = f"seed {seed} (FUZZ_SEED={seed} replays it)\n{result.stdout[-6000:]}{result.stderr}"
    assert report["operations"]["tested"] == report["operations"]["total"] > 0, output
    assert report["failures"] == [], output
    assert report["errors"] == [], output
    assert result.returncode == 0, output
    # Not a vacuous pass: the credentials worked, and valid requests got through.
    assert report["warnings"]["missing_auth"] == [], output
    accepted = sum(
        phase["accepted"] for rates in report["valid_rates"].values() for phase in rates.values()
    )
    assert accepted > 0, output
    return report, output


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 240)
def test_a_fuzzer_driven_by_the_schema_gets_no_server_error_and_only_documented_answers(
    start_stack: Callable[..., DevStack],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    seed = _seed(record_property)
    # The auth check probes every operation with wrong credentials, from one address and one
    # username; the login throttle would rightly lock them out with a 429 after a few, which the
    # check cannot tell from a missing refusal. The throttle has tests of its own.
    stack = start_stack(env={"EVENTPIPE_LOGIN_FAILURE_LIMIT": "0"})
    stack.wait_ready()
    stack.cli("users", "add", USER, "--password", PASSWORD)
    # A member of an organization, so org selectors naming it resolve as well as fail.
    stack.cli("orgs", "add", "acme")
    stack.cli("orgs", "add-member", "acme", USER, "--role", "supervisor")

    report, output = _fuzz(
        f"{stack.url}/api/schema", f"{USER}:{PASSWORD}", SECONDS, seed, tmp_path, record_property
    )
    assert report["test_cases"]["generated"] >= MIN_CASES, output
    # The stack lived through it.
    assert stack.process.poll() is None, stack.log()


@pytest.mark.slow
@pytest.mark.timeout(INTAKE_SECONDS + 240)
def test_a_fuzzer_driven_by_the_intake_schema_gets_no_server_error_and_only_documented_answers(
    start_stack: Callable[..., DevStack],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """With credentials configured, so that requiring them is checked too; without them the
    handler only skips that check (test_intake_schema.py checks that document's answers)."""
    seed = _seed(record_property)
    intake_port = free_port()
    stack = start_stack(
        "--intake-port",
        str(intake_port),
        env={
            "EVENTPIPE_INTAKE_USERNAME": INTAKE_USER,
            "EVENTPIPE_INTAKE_PASSWORD": INTAKE_PASSWORD,
        },
    )
    stack.wait_ready()

    report, output = _fuzz(
        f"http://127.0.0.1:{intake_port}/api/schema",
        f"{INTAKE_USER}:{INTAKE_PASSWORD}",
        INTAKE_SECONDS,
        seed,
        tmp_path,
        record_property,
    )
    assert report["test_cases"]["generated"] >= INTAKE_MIN_CASES, output
    assert stack.process.poll() is None, stack.log()
