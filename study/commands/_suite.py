"""``actmix-study suite run|status|report``: nested-CV suites from one YAML file."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from study.store import DEFAULT_STORE, store_flags
from study.system import EXIT_INTERRUPTED, StudyInterrupted, sigterm_interrupts

__all__ = ["add_suite_commands"]

_EPILOG = (
    "examples:\n"
    "  actmix-study suite run suites/uci3.yaml    # resumable; --address auto on a cluster\n"
    "  actmix-study suite run suites/uci3.yaml --jobs 4   # four units at a time\n"
    "  actmix-study suite status suites/uci3.yaml\n"
    "  actmix-study suite report suites/uci3.yaml --out results/uci3"
)


def add_suite_commands(commands: Any) -> None:
    """Add the ``suite`` command and its three subcommands to the CLI."""
    suite = commands.add_parser(
        "suite",
        help="nested cross-validation of tuned models and references (run, status, report)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    actions = suite.add_subparsers(dest="suite_command", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run or continue a suite",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status = actions.add_parser("status", help="what is done, under way and left")
    report = actions.add_parser("report", help="report.json, report.html and figures")
    for parser in (run, status, report):
        parser.add_argument("file", help="the suite YAML file")
        parser.add_argument(
            "--store", default=DEFAULT_STORE, help=f"folder of the local stores ({DEFAULT_STORE})"
        )
    run.add_argument("--tracking-uri", help="MLflow tracking URI (default sqlite in --store)")
    run.add_argument("--address", help="Ray cluster: auto or HEAD_HOST:PORT (default local)")
    run.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="units side by side: this many suite drivers sharing one Ray (default 1)",
    )
    run.add_argument("--worker-of", type=int, help=argparse.SUPPRESS)  # set by --jobs
    report.add_argument(
        "--out", required=True, help="folder for report.json, report.html, report.md, PNGs"
    )
    report.add_argument(
        "--readme",
        help="also rewrite this suite's results block in this Markdown file (e.g. README.md)",
    )
    run.set_defaults(handler=_command_run)
    status.set_defaults(handler=_command_status)
    report.set_defaults(handler=_command_report)


def _command_run(args: argparse.Namespace) -> int:
    from study.suite import SuiteWorkersFailed, load_suite, run_suite

    suite = load_suite(args.file)
    store = store_flags(store=args.store, uri=args.tracking_uri)
    try:
        with sigterm_interrupts(lambda: StudyInterrupted(f"suite {suite.name}", "SIGTERM")):
            progress = run_suite(
                suite,
                store=args.store,
                tracking_uri=args.tracking_uri,
                address=args.address,
                jobs=args.jobs,
                worker_of=args.worker_of,
            )
    except SuiteWorkersFailed as failed:
        print(f"actmix-study: error: {failed}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stopped:
        how = stopped.signal_name if isinstance(stopped, StudyInterrupted) else "SIGINT"
        print(
            f"suite {suite.name}: interrupted ({how}); finished units are kept. Continue with "
            f"`actmix-study suite run {shlex.quote(args.file)}{store}`",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if args.worker_of is not None:
        return 0  # the command that started this worker speaks for the suite
    print(
        f"suite {suite.name}: {len(progress.done)}/{progress.total} units done; next: "
        f"`actmix-study suite report {shlex.quote(args.file)}{store} --out results/{suite.name}`"
    )
    return 0


def _command_status(args: argparse.Namespace) -> int:
    from study.suite import load_suite, suite_progress
    from study.system import format_table

    suite = load_suite(args.file)
    progress = suite_progress(suite, store=args.store)
    rows = []
    for dataset in suite.datasets:
        for label in suite.labels:
            cells = []
            for units in (progress.done, progress.started, progress.left):
                folds = [u.outer_fold for u in units if u.dataset == dataset and u.label == label]
                cells.append(",".join(map(str, folds)) or "-")
            rows.append([dataset.label, label, *cells])
    print(format_table(["dataset", "model", "outer folds done", "under way", "left"], rows))
    print(
        f"suite {suite.name}: {len(progress.done)}/{progress.total} units done, "
        f"{len(progress.started)} under way, {len(progress.left)} not started"
    )
    return 0


def _command_report(args: argparse.Namespace) -> int:
    from study.report import write_suite_report
    from study.suite import load_suite

    suite = load_suite(args.file)
    paths = write_suite_report(suite, store=args.store, out=args.out, readme=args.readme)
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0
