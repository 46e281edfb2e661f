"""The ``analyze``, ``diagnose`` and ``report`` subcommands of ``actmix-study``.

``study/cli.py`` adds them with ``add_analysis_commands(commands)``; each handler
raises ``ValueError``/``FileNotFoundError`` for user errors, which ``main`` turns
into one line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from study.store import add_store_options, tracking_uri

__all__ = ["add_analysis_commands"]

ANALYSIS_ARTIFACTS = "analysis"  # folder of a run's artifacts that ``analyze --run`` fills


# --- analyze -------------------------------------------------------------------------------


def _command_analyze(args: argparse.Namespace) -> int:
    from actmix.analysis import analyze_model, load_model
    from study.tracking import attach_folder, download_model

    if args.run:
        uri = tracking_uri(args, must_exist=True)
        with tempfile.TemporaryDirectory() as directory:
            model = load_model(download_model(uri, args.run, directory))
        source, default_out = f"run {args.run}", f"actmix-results/analysis-{args.run[:12]}"
    else:
        model = load_model(args.model_file)
        source = str(args.model_file)
        default_out = f"actmix-results/analysis-{Path(args.model_file).stem}"
    if not 0 <= args.member < model.members:
        raise ValueError(f"--member {args.member} out of range 0..{model.members - 1}")
    out = Path(args.out or default_out)
    files = analyze_model(model, out, member=args.member, title=args.title or "")
    print(f"analysis of {source} ({model.spec['activation']}): {len(files)} files in {out}")
    for path in files:
        print(f"  {path.name}")
    if args.run:
        attach_folder(uri, args.run, out, ANALYSIS_ARTIFACTS)
        print(f"logged to MLflow run {args.run} under {ANALYSIS_ARTIFACTS}/")
    return 0


def _add_analyze(commands) -> None:
    analyze = commands.add_parser(
        "analyze",
        help="figures and statistics of what a trained model learned (ActMix mixing weights)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  actmix-study analyze --run 3f2a...   # the trial's model.pt; logged back to it\n"
            "  actmix-study analyze --model-file model.pt --out analysis/"
        ),
    )
    source = analyze.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="MLflow run id of a trial that logged model.pt")
    source.add_argument("--model-file", help="a model file written by actmix.analysis.save_model")
    analyze.add_argument("--out", help="output folder (default actmix-results/analysis-<name>)")
    analyze.add_argument("--member", type=int, default=0, help="member of a batched model (0)")
    analyze.add_argument("--title", help="prefix for figure titles")
    add_store_options(analyze)
    analyze.set_defaults(handler=_command_analyze)


# --- diagnose ------------------------------------------------------------------------------

DIAGNOSTICS_EXPERIMENT = "actmix-diagnostics"


def _command_diagnose(args: argparse.Namespace) -> int:
    from actmix.diagnostics import DiagnosticSettings, run_diagnostics, write_diagnostics
    from study.tracking import check_tracking_uri, log_folder_run

    names = [name.strip() for name in args.activations.split(",") if name.strip()]
    if args.tracking_uri:
        check_tracking_uri(args.tracking_uri)  # fail before the experiments run, not after
    settings = DiagnosticSettings.quick() if args.quick else DiagnosticSettings()
    started = time.time()
    results = run_diagnostics(
        names,
        settings=settings,
        seed=args.seed,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    out = Path(args.out or f"actmix-results/diagnostics-{int(started)}")
    files = write_diagnostics(results, out)
    print(
        f"diagnosed {', '.join(names)}{' (quick)' if args.quick else ''} in "
        f"{time.time() - started:.1f}s: {len(files)} files in {out} (read diagnostics.md)"
    )
    if args.tracking_uri:
        run_id = log_folder_run(
            args.tracking_uri,
            DIAGNOSTICS_EXPERIMENT,
            f"diagnose-{'-'.join(names)}",
            {"activations": ",".join(names), "quick": args.quick, "seed": args.seed},
            out,
        )
        print(f"logged to MLflow: experiment {DIAGNOSTICS_EXPERIMENT!r}, run {run_id}")
    return 0


def _add_diagnose(commands) -> None:
    diagnose = commands.add_parser(
        "diagnose",
        help="gradient flow, dead units, stability and capacity of activations",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  actmix-study diagnose --activations relu,gelu,actmix --quick\n"
            "  actmix-study diagnose --activations relu,actmix,apa,prepu --out diag/ \\\n"
            "      --tracking-uri sqlite:///actmix-runs/mlflow.db"
        ),
    )
    diagnose.add_argument(
        "--activations",
        default="relu,gelu,actmix",
        help="comma-separated registry names (default relu,gelu,actmix; see `models`)",
    )
    diagnose.add_argument(
        "--quick", action="store_true", help="tiny networks and few steps (seconds)"
    )
    diagnose.add_argument("--seed", type=int, default=0, help="seed of every draw (0)")
    diagnose.add_argument("--out", help="output folder (default actmix-results/diagnostics-<time>)")
    diagnose.add_argument(
        "--tracking-uri",
        help=f"also log the folder to MLflow ({DIAGNOSTICS_EXPERIMENT!r}); "
        "default $MLFLOW_TRACKING_URI if set",
    )
    diagnose.set_defaults(handler=_command_diagnose)


# --- report --------------------------------------------------------------------------------

REPORT_ARTIFACTS = "report"  # folder of a study parent run's artifacts that ``report`` fills


def _command_report(args: argparse.Namespace) -> int:
    from study.report import build_report, verdict, write_report
    from study.tracking import reportable_experiments

    studies, experiments, results = args.study or [], args.experiment or [], args.results or []
    named = bool(studies or experiments)
    # result files alone need no MLflow store
    uri = None
    if named or not results:
        uri = tracking_uri(args, must_exist=True)
        if not named:  # and no result files: every study in the store
            studies = reportable_experiments(uri)
    report = build_report(
        uri, studies=studies, experiments=experiments, result_files=results, seed=args.seed
    )
    out = Path(args.out or f"actmix-results/report-{int(report.created)}")
    written = write_report(report, out)
    print(
        f"report on {', '.join(report.sources)}: {len(report.runs)} final run(s) on "
        f"{len(report.datasets)} dataset(s), {len(report.histories)} study history(ies)"
    )
    for comparison in report.comparisons:
        print(f"  {comparison.dataset}: actmix vs {comparison.other_model}: {verdict(comparison)}")
    if report.ranks:
        ranks = ", ".join(f"{model} {rank:.2f}" for model, rank in report.ranks.items())
        print(f"  mean ranks: {ranks}")
    print(f"{len(written)} files in {out}; open {out / 'report.html'}")
    logged = _log_report(uri, studies, out) if uri else []
    if logged:
        print(f"logged to the parent run of {', '.join(logged)} under {REPORT_ARTIFACTS}/")
    return 0


def _log_report(uri: str, studies: list[str], out: Path) -> list[str]:
    """Attach the report to each study's latest parent run; returns the studies logged to."""
    from study.tracking import attach_folder, client_for, latest_parent_run

    client = client_for(uri)
    logged = []
    for study in studies:
        parent = latest_parent_run(client, study)
        if parent is not None:
            attach_folder(uri, parent.info.run_id, out, REPORT_ARTIFACTS)
            logged.append(study)
    return logged


def _add_report(commands) -> None:
    report = commands.add_parser(
        "report",
        help="HTML report: final-CV leaderboards, paired tests, Optuna history and importance",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  actmix-study report --study adult-actmix --study adult-relu\n"
            "  actmix-study report --study adult-actmix --experiment actmix-final --out rep/\n"
            "  actmix-study report --results actmix-results/cv-*.json\n"
            "  actmix-study report                      # every study in the store"
        ),
    )
    report.add_argument(
        "--study",
        action="append",
        help="a study (its final runs and Optuna history); repeat for several",
    )
    report.add_argument(
        "--experiment",
        action="append",
        help="an MLflow experiment whose final runs join the leaderboards (e.g. actmix-final)",
    )
    report.add_argument(
        "--results",
        nargs="+",
        metavar="FILE",
        help="cv result JSON files (`actmix-study cv --out`) to include; alone, no store is read",
    )
    report.add_argument("--out", help="output folder (default actmix-results/report-<time>)")
    report.add_argument("--seed", type=int, default=0, help="seed of the importance forest (0)")
    add_store_options(report)
    report.set_defaults(handler=_command_report)


def add_analysis_commands(commands) -> None:
    """Add ``analyze``, ``diagnose`` and ``report`` to argparse's subparsers ``commands``."""
    _add_analyze(commands)
    _add_diagnose(commands)
    _add_report(commands)
