"""``eventpipe bench``: the project's own benchmarks, each reported as ratios to raw baselines.

A distribution of its own (``benchmarks/pyproject.toml``), so that an install of eventpipe carries
neither this code nor its plotting library; ``eventpipe bench`` imports it when asked. One module
per stage, each with its ``run_*`` and ``format_*_report``: ``ingest``, ``export``, ``scale``,
``noisy``; ``suite`` runs them all and draws the chart, ``compare`` compares two suites. What
stages share: ``stack`` (a local pipeline of real processes), ``load_generator``, ``workload``
(the events), ``host_cpu`` (the VM host's steal) and ``progress`` (stderr, not the report).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import orjson

from benchmarks.progress import progress
from eventpipe.errors import CommandError
from eventpipe.settings import Settings


def run_bench(args: argparse.Namespace) -> int:
    if args.stage == "compare":
        return _compare(args)
    settings = Settings.from_env(data_dir=args.data_dir)
    # As a gateway is deployed: one process per core.
    gateway_processes = args.gateway_processes or os.cpu_count() or 1
    report: dict[str, Any]
    describe: Callable[[dict[str, Any]], str]
    if args.stage == "ingest":
        from benchmarks.ingest import (
            IngestBenchOptions,
            format_ingest_report,
            run_ingest_bench,
        )

        options = IngestBenchOptions(
            events=args.events,
            concurrency=args.concurrency,
            batch=args.batch,
            url=args.url,
            token=args.token,
            gateway_processes=gateway_processes,
        )
        report = run_ingest_bench(settings, options)
        describe = format_ingest_report
    elif args.stage == "intake":
        from benchmarks.intake import format_intake_report, run_intake_bench

        report = run_intake_bench(
            settings, events=args.events, batch=args.batch, concurrency=args.concurrency
        )
        describe = format_intake_report
    elif args.stage == "export":
        from benchmarks.export import format_export_report, run_export_benchmark

        progress(f"filling an embedded engine with {args.rows:,} rows, then exporting them ...")
        report = run_export_benchmark(args.rows)
        describe = format_export_report
    elif args.stage == "scale":
        from benchmarks.scale import format_scale_report, run_scale_bench

        report = run_scale_bench(settings, events=args.events, workers=(1, 2))
        describe = format_scale_report
    elif args.stage == "noisy":
        from benchmarks.noisy import format_noisy_report, run_noisy_bench

        report = run_noisy_bench(
            settings, limit=args.tenant_limit, seconds=args.seconds, rounds=args.rounds
        )
        describe = format_noisy_report
    else:
        from benchmarks.suite import format_suite_table, run_suite

        report = run_suite(
            settings,
            events=args.events,
            rows=args.rows,
            output=args.output,
            gateway_processes=gateway_processes,
            repeats=args.repeats,
            max_steal=args.max_steal,
        )
        describe = format_suite_table
    print(
        orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else describe(report)
    )
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Exit status 1 when the reports do not agree, so that a script can act on it."""
    from benchmarks.compare import compare_ratios, format_comparison, load_ratios

    if not args.reports:
        raise CommandError("compare needs --reports FIRST.json SECOND.json")
    first, second = (load_ratios(path) for path in args.reports)
    comparison = compare_ratios(first, second, args.tolerance)
    print(
        orjson.dumps(comparison, option=orjson.OPT_INDENT_2).decode()
        if args.json
        else format_comparison(comparison)
    )
    return 0 if comparison["agree"] else 1
