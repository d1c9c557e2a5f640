"""``eventpipe bench``: the project's own benchmarks, each reported as ratios to raw baselines."""

from __future__ import annotations

import argparse

import orjson

from eventpipe.settings import Settings


def run_bench(args: argparse.Namespace) -> int:
    from eventpipe.bench.ingest import IngestBenchOptions, format_ingest_report, run_ingest_bench

    settings = Settings.from_env(data_dir=args.data_dir)
    options = IngestBenchOptions(
        events=args.events,
        concurrency=args.concurrency,
        batch=args.batch,
        url=args.url,
        token=args.token,
    )
    report = run_ingest_bench(settings, options)
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_ingest_report(report))
    return 0
