"""The study commands of ``actmix-study``: run, resume, leaderboard, export-best, spaces.

The options of ``run`` and their defaults come from :class:`~study.request.StudyRequest`
(one source of truth); only their flag spelling and help text live here.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from typing import TYPE_CHECKING, Any, get_args

from study.request import SchedulerKind, StudyRequest, request_default
from study.store import (
    DEFAULT_STORE,
    add_store_options,
    check_writable_file,
    store_flags,
    tracking_uri,
)
from study.system import EXIT_INTERRUPTED, StudyInterrupted

if TYPE_CHECKING:
    from study.run import StudyOutcome  # imports Ray: only for the type

__all__ = ["EXIT_NO_TRIAL", "add_study_commands", "print_interrupted", "print_outcome"]

EXIT_NO_TRIAL = 1  # run/resume: the study ended, but no trial produced a result


def _request_option(parser: argparse.ArgumentParser, flag: str, help: str, **kwargs: Any) -> None:
    """An option of ``run`` whose default is the StudyRequest field of the same name."""
    default = request_default(flag.removeprefix("--").replace("-", "_"))
    shown = "" if default is None else f" (default {default})"
    parser.add_argument(flag, default=default, help=help + shown, **kwargs)


def _add_run(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run a hyper-parameter study (Ray Tune + Optuna, tracked in MLflow)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  actmix-study run    # the default: a small study on bundled power_plant\n"
            "  actmix-study run --dataset adult --model actmix --trials 100 --folds 5 \\\n"
            "      --epochs 200 --max-concurrent 8 --address auto --gpus-per-trial 0.25 \\\n"
            "      --tracking-uri http://mlflow:5000 --name adult-actmix\n"
            "  actmix-study run --model xgboost --trials 20\n"
            "  actmix-study run --space my_space.yaml --model elu\n"
            "\n"
            "exit codes: 0 a trial finished; 1 no trial finished (every one failed);\n"
            "  2 bad input (one line, nothing written); 130 stopped by Ctrl-C or SIGTERM\n"
            "  (the state is saved: `actmix-study resume NAME` continues)"
        ),
    )
    option = _request_option
    option(run, "--name", "study name; default <dataset>-<model>-<time>")
    option(run, "--experiment", "MLflow experiment of the study's runs; default: the study name")
    option(run, "--dataset", "bundled name, uci:<id> or csv:<path>")
    option(run, "--target", "target column (csv: datasets)")
    option(run, "--task", "override task inference", choices=["regression", "classification"])
    option(run, "--model", "activation name or xgboost; default: the space's model")
    option(run, "--space", "search space: a bundled name (see `spaces`) or a YAML path")
    option(run, "--trials", "number of trials", type=int)
    option(run, "--n-startup-trials", "random trials before TPE models the history", type=int)
    option(run, "--folds", "folds per trial", type=int)
    option(run, "--seeds", "training seeds per fold", type=int)
    option(run, "--seed", "sampler seed and first training seed", type=int)
    option(run, "--split-seed", "seed of the fold split", type=int)
    option(run, "--epochs", "max epochs per trial", type=int)
    option(run, "--max-concurrent", "trials at once (packs at once with --pack)", type=int)
    option(
        run,
        "--pack",
        "configurations trained together as one network (MLP models); 1: unpacked",
        type=int,
    )
    option(run, "--time-budget", "stop starting trials after this many seconds", type=float)
    option(run, "--scheduler", "early stopping of trials", choices=list(get_args(SchedulerKind)))
    option(run, "--grace-period", "ASHA: min epochs", type=int)
    option(run, "--reduction-factor", "ASHA: reduction factor", type=float)
    option(run, "--cpus-per-trial", "CPUs per trial", type=float)
    option(run, "--gpus-per-trial", "GPUs per trial, may be fractional", type=float)
    option(run, "--address", "Ray cluster: auto or HEAD_HOST:PORT; default: a local Ray")
    option(run, "--optuna-storage", "Optuna RDB URL; default sqlite in --store")
    option(run, "--max-failures", "retries of a crashed trial", type=int)
    option(
        run,
        "--warm-start",
        "a study of the store (same model, any dataset) whose best configurations go first",
    )
    run.add_argument(
        "--top",
        dest="warm_start_top",
        type=int,
        default=request_default("warm_start_top"),
        help=f"--warm-start: how many (default {request_default('warm_start_top')})",
    )
    add_store_options(run)
    run.set_defaults(handler=_command_run)


def _command_run(args: argparse.Namespace) -> int:
    from study.run import run_study

    fields = [item.name for item in dataclasses.fields(StudyRequest)]
    request = StudyRequest.from_mapping(
        {name: getattr(args, name) for name in fields if hasattr(args, name)}
    )
    try:
        outcome = run_study(request)
    except StudyInterrupted as stopped:
        return print_interrupted(stopped, store=args.store)
    return print_outcome(outcome, store=args.store, uri=outcome.tracking_uri)


def print_interrupted(stopped: StudyInterrupted, *, store: str) -> int:
    """The last line after a stop signal: how to continue. Returns ``EXIT_INTERRUPTED``."""
    print(
        f"study {stopped.study}: interrupted ({stopped.signal_name}); its state is saved. "
        f"Continue with `actmix-study resume {shlex.quote(stopped.study)}"
        f"{store_flags(store=store)}`",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED


def print_outcome(outcome: StudyOutcome, *, store: str, uri: str | None) -> int:
    """The leaderboard of a finished study and a line that says where to look next.

    Returns the exit code: 0, or ``EXIT_NO_TRIAL`` when no trial produced a result.
    """
    from study.tracking import SEED_DEFAULT_TRIAL, format_frame, study_trials

    trials = study_trials(outcome.tracking_uri, outcome.name)
    print(format_frame(trials.head(15)))
    seed_default = trials[trials["trial"] == SEED_DEFAULT_TRIAL]
    if len(seed_default):  # the first trial is the space's seed default: the bar to beat
        rank = int(seed_default["rank"].iloc[0])
        print(f"{SEED_DEFAULT_TRIAL} is the seed default configuration (rank {rank})")
    counts = outcome.counts
    best = (
        f"best {outcome.objective} {outcome.best_value:.4f} ({outcome.best_trial})"
        if outcome.best_value is not None
        else "no trial finished"
    )
    flags = store_flags(store=store, uri=uri)
    busy = (
        f"; trials trained {outcome.utilisation:.0%} of the time their slots were open "
        "(Ray start-up and idle slots count against it)"
        if outcome.utilisation is not None
        else ""
    )
    print(
        f"study {outcome.name}: {best}; {sum(counts.values())} trials: "
        f"{counts['finished']} finished, "
        f"{counts['stopped']} stopped early, {counts['failed']} failed{busy}. "
        f"Look: `actmix-study ui{flags}` (parent run {outcome.parent_run_id}); "
        f"`actmix-study report --study {outcome.name}{flags}`"
    )
    return 0 if outcome.best_value is not None else EXIT_NO_TRIAL


def _command_resume(args: argparse.Namespace) -> int:
    from study.run import resume_study

    try:
        outcome = resume_study(args.name, store=args.store, address=_address(args.address))
    except StudyInterrupted as stopped:
        return print_interrupted(stopped, store=args.store)
    return print_outcome(outcome, store=args.store, uri=outcome.tracking_uri)


def _command_extend(args: argparse.Namespace) -> int:
    from study.run import extend_study

    try:
        outcome = extend_study(
            args.name, args.trials, store=args.store, address=_address(args.address)
        )
    except StudyInterrupted as stopped:
        return print_interrupted(stopped, store=args.store)
    return print_outcome(outcome, store=args.store, uri=outcome.tracking_uri)


def _address(given: str | None) -> str | None:
    """``--address`` of resume and extend: the recorded Ray by default, None for local."""
    from study.run import RECORDED_ADDRESS

    if given is None:
        return RECORDED_ADDRESS
    return None if given == "local" else given


def _command_leaderboard(args: argparse.Namespace) -> int:
    from study.tracking import best_per_model, format_frame, study_trials, suite_finals

    uri = tracking_uri(args, must_exist=True)
    if args.stage == "final" and not args.suite:
        raise ValueError("--stage final needs --suite NAME (the suite whose final runs to rank)")
    if args.study:
        frame = study_trials(uri, args.study)
    elif args.stage == "final":
        frame = suite_finals(uri, args.suite, dataset=args.dataset)
    else:
        frame = best_per_model(uri, dataset=args.dataset, suite=args.suite, params=args.params)
    if frame.empty:
        where = f"suite {args.suite}" if args.suite else "studies run with `run`"
        hint = "" if args.suite else " (a suite's studies: --suite NAME)"
        raise ValueError(f"no trials of {where} found at {uri}{hint}")
    print(format_frame(frame, args.format))
    return 0


def _command_export_best(args: argparse.Namespace) -> int:
    from study.tracking import export_best

    check_writable_file(args.out, field="out")  # before MLflow is asked anything
    uri = tracking_uri(args, must_exist=True)
    path, config = export_best(uri, args.study, args.out, top_k=args.top_k)
    members = config.get("ensemble", [config])
    said = ", ".join(
        f"{m['provenance']['trial']} ({m['provenance']['objective']} "
        f"{m['provenance']['value']:.4f})"
        for m in members
    )
    what = f"an ensemble of {len(members)}: " if "ensemble" in config else ""
    print(
        f"wrote {path}: {what}{said} of {args.study}; "
        f"next: actmix-study cv --config {shlex.quote(str(path))} --folds 10 --seeds 3"
    )
    return 0


def _command_spaces(_: argparse.Namespace) -> int:
    from study.space import bundled_spaces, load_space
    from study.system import format_table

    rows = [[name, load_space(name).model, text] for name, text in bundled_spaces().items()]
    print(format_table(["space", "model", "description"], rows))
    print("use one with --space NAME, or your own file with --space PATH.yaml")
    return 0


def _add_again_options(parser: argparse.ArgumentParser) -> None:
    """--store and --address of the commands that take up an existing study."""
    parser.add_argument(
        "--store", default=DEFAULT_STORE, help=f"folder of the local stores ({DEFAULT_STORE})"
    )
    parser.add_argument(
        "--address",
        help="the Ray to run on: auto, HEAD_HOST:PORT, or local for a local Ray; "
        "default: the one the study was started with",
    )


def add_study_commands(commands: Any) -> None:
    """Add run, resume, extend, leaderboard, export-best and spaces to the CLI."""
    _add_run(commands)
    resume = commands.add_parser(
        "resume",
        help="resume a study whose driver was stopped or killed",
        epilog="example: actmix-study resume adult-actmix --store actmix-runs",
    )
    resume.add_argument("name", help="the study name")
    _add_again_options(resume)
    resume.set_defaults(handler=_command_resume)

    extend = commands.add_parser(
        "extend",
        help="add trials to a finished or interrupted study (its search goes on)",
        epilog="example: actmix-study extend adult-actmix --trials 20 --store actmix-runs",
    )
    extend.add_argument("name", help="the study name")
    extend.add_argument("--trials", type=int, required=True, help="how many trials to add")
    _add_again_options(extend)
    extend.set_defaults(handler=_command_extend)

    board = commands.add_parser(
        "leaderboard",
        help="rank the trials of a study, or show the best trial per (dataset, model)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n  actmix-study leaderboard\n"
            "  actmix-study leaderboard --study S --format csv\n"
            "  actmix-study leaderboard --suite uci3 --params\n"
            "  actmix-study leaderboard --suite uci3 --stage final"
        ),
    )
    board.add_argument("--study", help="rank the trials of this study")
    board.add_argument("--dataset", help="only this dataset (best-per-model view)")
    board.add_argument(
        "--suite", help="the studies of this suite instead of the ones run with `run`"
    )
    board.add_argument(
        "--stage",
        choices=["study", "final"],
        default="study",
        help="with --suite: the studies' best trials (inner validation), or the retrained "
        "models and references on the outer-test rows (mean over outer folds)",
    )
    board.add_argument(
        "--params", action="store_true", help="add the winning trial's parameters (JSON)"
    )
    board.add_argument("--format", choices=["table", "csv", "markdown", "json"], default="table")
    add_store_options(board)
    board.set_defaults(handler=_command_leaderboard)

    export = commands.add_parser(
        "export-best",
        help="write the best trial's configuration as YAML for `cv --config`",
        epilog="example: actmix-study export-best --study S --out best.yaml",
    )
    export.add_argument("--study", required=True)
    export.add_argument("--out", required=True, help="YAML file to write")
    export.add_argument(
        "--top-k",
        type=int,
        help="write the K best configurations: `cv --config` evaluates their ensemble",
    )
    add_store_options(export)
    export.set_defaults(handler=_command_export_best)

    spaces = commands.add_parser(
        "spaces",
        help="list the bundled search spaces",
        epilog="then: actmix-study run --space actmix (or --space my_space.yaml)",
    )
    spaces.set_defaults(handler=_command_spaces)
