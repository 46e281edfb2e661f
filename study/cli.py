"""The ``actmix-study`` command line.

Every user error (unknown dataset or model, missing file, bad YAML, bad value)
becomes one line on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from study.commands import add_study_commands, add_suite_commands
from study.request import RequestError
from study.store import (
    DEFAULT_STORE,
    LowDiskSpace,
    add_store_options,
    disk_full_error,
    environment_tracking_uri,
    free_bytes,
    megabytes,
    tracking_uri,
)
from study.system import EXIT_INTERRUPTED, sigterm_interrupts

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_FAILED = 1  # the command could not finish (a full disk)


class UsageError(ValueError):
    """A problem with what the user asked for; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage dump), exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"actmix-study: error: {message} (see {self.prog} --help)\n")


def _positive_int(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def load_yaml_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely; errors name the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UsageError(
            f"cannot parse {path}{where}: {getattr(error, 'problem', error)}"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of settings at the top level")
    return data


def _run_configs(args: argparse.Namespace) -> tuple[list, bool]:
    """The configurations `cv` evaluates, and whether they are an ensemble (a file that
    ``export-best --top-k`` wrote: ``{ensemble: [...]}``)."""
    data = load_yaml_config(args.config) if args.config else {}
    ensemble = data.get("ensemble")
    if ensemble is not None and (not isinstance(ensemble, list) or not ensemble):
        raise UsageError(f"{args.config}: ensemble must be a non-empty list of configurations")
    if ensemble is None:
        return [_run_config(args, data, args.config)], False
    return [
        _run_config(args, m, f"{args.config}: ensemble[{i}]") for i, m in enumerate(ensemble)
    ], True


def _run_config(args: argparse.Namespace, data: dict[str, Any], source: str):
    from actmix.activations import check_activation
    from actmix.config import XGBOOST, RunConfig, config_from_dict, with_epochs

    config = config_from_dict(RunConfig, data, source=source or "defaults")
    changes: dict[str, Any] = {}
    if args.model:
        changes["model"] = args.model
    if args.dataset:
        changes["dataset"] = args.dataset
    config = dataclasses.replace(config, **changes)
    if args.epochs:
        config = with_epochs(config, args.epochs)
    if config.model != XGBOOST:
        try:
            check_activation(config.model)
        except ValueError:
            raise UsageError(_unknown_model(config.model)) from None
    return config


def _unknown_model(name: str) -> str:
    from actmix.activations import available_activations

    return f"unknown model {name!r}; valid: {', '.join((*available_activations(), 'xgboost'))}"


def _command_cv(args: argparse.Namespace) -> int:
    from actmix.config import DEFAULT_DATASET
    from actmix.cv import cross_validate
    from actmix.data import load_dataset
    from actmix.ensembles import cross_validate_ensemble
    from study.system import EpochProgress, format_table

    configs, ensemble = _run_configs(args)
    config = configs[0]  # an ensemble's data and provenance: its best member's
    dataset_spec = config.dataset or DEFAULT_DATASET
    # a config exported from a csv: study names its target and task
    target = args.target or config.provenance.get("target")
    task = args.task or config.provenance.get("task")
    dataset = load_dataset(dataset_spec, target=target, task=task)
    seeds = list(range(args.seed, args.seed + args.seeds))
    tracking_uri = args.tracking_uri or config.provenance.get("tracking_uri")
    if tracking_uri:
        from study.tracking import check_tracking_uri

        check_tracking_uri(tracking_uri)
    what = f"an ensemble of {len(configs)} {config.model}" if ensemble else config.model
    print(
        f"cv: {what} on {dataset.name} ({dataset.n_rows} rows, {dataset.task}), "
        f"{args.folds} folds x {len(seeds)} seed(s)",
        file=sys.stderr,
    )
    # split_seed None: the study's + 1 for an exported config, else 0
    run = {"folds": args.folds, "seeds": seeds, "split_seed": args.split_seed}
    run |= {"device": args.device, "progress": lambda line: print(line, file=sys.stderr)}
    if ensemble:
        result = cross_validate_ensemble(dataset, configs, **run)
    else:
        result = cross_validate(dataset, config, on_epoch=EpochProgress(config.train.epochs), **run)
    rows = [
        [name.removeprefix("test_"), f"{s['mean']:.4f} ± {s['std']:.4f}", s["min"], s["max"]]
        for name, s in result.summary.items()
        if name.startswith("test_")
    ]
    print(format_table(["metric (test)", "mean ± std", "min", "max"], rows))
    out = Path(
        args.out or f"actmix-results/cv-{dataset.name}-{result.model_name}-{int(time.time())}.json"
    )
    result.save_json(out)
    if tracking_uri:
        from study.tracking import log_final_cv

        experiment = args.experiment or config.provenance.get("study") or "actmix-final"
        run_id = log_final_cv(
            tracking_uri, result, experiment=experiment, provenance=config.provenance, json_path=out
        )
        print(f"logged to MLflow: experiment {experiment!r}, run {run_id} (stage=final)")
    primary = result.summary[f"test_{result.primary_metric}"]
    print(
        f"{result.model_name} on {dataset.name}: test {result.primary_metric} "
        f"{primary['mean']:.4f} ± {primary['std']:.4f} over {len(result.rows)} runs "
        f"in {result.seconds:.1f}s; per-fold rows in {out}"
    )
    return 0


def _command_datasets(_: argparse.Namespace) -> int:
    from actmix.data import describe_datasets
    from study.system import format_table

    entries = describe_datasets()
    headers = list(entries[0])
    print(format_table(headers, [[entry[h] for h in headers] for entry in entries]))
    print("also: uci:<id> (downloaded once, cached) and csv:<path> with --target COLUMN")
    return 0


def _command_models(_: argparse.Namespace) -> int:
    from actmix.activations import ACTIVATIONS
    from study.system import format_table

    rows = [
        [name, (ACTIVATIONS[name].__doc__ or "").strip().splitlines()[0]]
        for name in sorted(ACTIVATIONS)
    ]
    rows.append(["xgboost", "gradient-boosted trees on the same folds and preprocessing"])
    print(format_table(["model", "description"], rows))
    return 0


def _command_ui(args: argparse.Namespace) -> int:
    from study.commands import serve_mlflow_ui

    uri = tracking_uri(args, must_exist=not args.tracking_uri)
    if args.host != "127.0.0.1":
        print(
            f"warning: serving the MLflow UI on {args.host}: anyone who can reach this "
            "address can read and change the runs",
            file=sys.stderr,
        )
    address = f"http://{args.host}:{args.port}"
    print(f"MLflow UI at {address} (store {uri}); Ctrl-C stops it", flush=True)
    latest = _latest_study(uri, address)
    if latest is not None:
        name, url = latest
        print(f"latest study {name}: {url}", flush=True)
    return serve_mlflow_ui(uri, host=args.host, port=args.port)


def _latest_study(uri: str, address: str) -> tuple[str, str] | None:
    """The most recently started study of the store and the URL of its runs, if any."""
    from study.tracking import TAG_ROLE, TAG_STUDY, client_for, runs_view_url, search_all_runs

    try:
        client = client_for(uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        found = search_all_runs(
            client,
            experiments,
            f"tags.`{TAG_ROLE}` = 'study'",
            order_by=["attributes.start_time DESC"],
            limit=1,
        )
        if not found:
            return None
        name = found[0].data.tags.get(TAG_STUDY, found[0].info.run_name)
        return name, runs_view_url(client, address, found[0].info.experiment_id, name)
    except Exception:  # a store the server will say more about; the URL is a courtesy
        return None


def _add_ui_command(commands) -> None:
    ui = commands.add_parser(
        "ui",
        help="serve the MLflow UI over the study store",
        epilog="examples:\n  actmix-study ui\n  actmix-study ui --store runs --port 5050",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_options(ui)
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    ui.set_defaults(handler=_command_ui)


def _command_dashboard(args: argparse.Namespace) -> int:
    from study.commands import serve_optuna_dashboard
    from study.store import default_store_uris, store_folder

    if args.optuna_storage:
        storage = args.optuna_storage
    else:
        folder = store_folder(args.store)
        if not (folder / "optuna.db").is_file():
            raise ValueError(
                f"no Optuna storage at {folder / 'optuna.db'}: run a study first, or give "
                "--store or --optuna-storage"
            )
        storage = default_store_uris(folder)[1]
    print(
        f"optuna-dashboard at http://{args.host}:{args.port} (storage {storage}); Ctrl-C stops it",
        flush=True,
    )
    return serve_optuna_dashboard(storage, host=args.host, port=args.port)


def _add_dashboard_command(commands) -> None:
    dashboard = commands.add_parser(
        "dashboard",
        help="serve optuna-dashboard over the studies' Optuna storage (optional extra)",
        epilog=(
            "examples:\n  actmix-study dashboard\n"
            "  actmix-study dashboard --store runs --port 8081\n"
            "needs the extra: pip install 'actmix-study[dashboard]'"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dashboard.add_argument(
        "--store", default=DEFAULT_STORE, help=f"folder of the local stores ({DEFAULT_STORE})"
    )
    dashboard.add_argument("--optuna-storage", help="any Optuna RDB URL instead of the store's")
    dashboard.add_argument("--port", type=int, default=8080)
    dashboard.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    dashboard.set_defaults(handler=_command_dashboard)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("actmix-study")
    except metadata.PackageNotFoundError:
        return "unknown (not installed; pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="actmix-study",
        description="Hyper-parameter studies of tabular MLPs with trainable activations.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    cv = commands.add_parser(
        "cv",
        help="leak-free k-fold cross-validation of one configuration",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  actmix-study cv --dataset power_plant --model actmix --folds 10 --epochs 200\n"
            "  actmix-study cv --dataset adult --model xgboost --folds 5\n"
            "  actmix-study cv --config best.yaml --folds 10 --seeds 3\n"
            "  actmix-study cv --dataset adult --model xgboost --split-seed 1 \\\n"
            "      --tracking-uri sqlite:///actmix-runs/mlflow.db --experiment adult-actmix\n"
            "  actmix-study cv --dataset csv:data.csv --target price --model relu"
        ),
    )
    cv.add_argument("--dataset", help="power_plant | adult | magic_gamma | uci:<id> | csv:<path>")
    cv.add_argument("--target", help="target column (csv: datasets)")
    cv.add_argument(
        "--task", choices=["regression", "classification"], help="override task inference"
    )
    cv.add_argument("--model", help="activation name (see `actmix-study models`) or xgboost")
    cv.add_argument("--config", help="YAML configuration (e.g. from export-best)")
    cv.add_argument("--folds", type=_positive_int(2), default=10, help="outer folds (default 10)")
    cv.add_argument("--seeds", type=_positive_int(1), default=1, help="seeds per fold (default 1)")
    cv.add_argument("--seed", type=int, default=0, help="first training seed (default 0)")
    cv.add_argument(
        "--split-seed",
        type=int,
        help="seed of the fold split (default 0; for an exported config, the study's + 1)",
    )
    cv.add_argument(
        "--epochs",
        type=_positive_int(1),
        help="override the max epochs; annealing and warm-up keep their fraction of the run",
    )
    cv.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    cv.add_argument(
        "--out", help="JSON result path (default actmix-results/cv-<dataset>-<model>-<time>.json)"
    )
    cv.add_argument(
        "--tracking-uri",
        help="log the result to MLflow as stage=final (default: $MLFLOW_TRACKING_URI, "
        "else the exported config's store, else no logging)",
    )
    cv.add_argument(
        "--experiment",
        help="MLflow experiment of the final run (default: the exported config's study, "
        "else actmix-final); name a study to put a baseline next to its final runs",
    )
    cv.set_defaults(handler=_command_cv)
    add_study_commands(commands)
    add_suite_commands(commands)
    _add_ui_command(commands)
    _add_dashboard_command(commands)
    from study.commands import add_analysis_commands

    add_analysis_commands(commands)

    datasets = commands.add_parser(
        "datasets",
        help="list the bundled datasets",
        epilog="then: actmix-study cv --dataset adult, or --dataset csv:my.csv --target y",
    )
    datasets.set_defaults(handler=_command_datasets)
    models = commands.add_parser(
        "models",
        help="list the models (activations and xgboost)",
        epilog="then: actmix-study cv --model prelu, or actmix-study run --model gelu",
    )
    models.set_defaults(handler=_command_models)
    return parser


_MAX_MESSAGE = 1000  # characters of an error line


def main(argv: Sequence[str] | None = None) -> int:
    from study.system import apply_environment_defaults

    apply_environment_defaults()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "tracking_uri", "") is None:
        # the one place every command's absent --tracking-uri falls back, as MLflow's do
        args.tracking_uri = environment_tracking_uri()
    try:
        with sigterm_interrupts():  # `kill PID` ends a command as Ctrl-C does
            return args.handler(args)
    except RequestError as error:
        # library checks name the field; the user typed the flag
        flag = "--" + error.field.replace("_", "-")
        print(f"actmix-study: error: {flag}: {error.problem}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, FileNotFoundError, ConnectionError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if len(message) > _MAX_MESSAGE:  # a quoted value can be any size: one line, bounded
            message = f"{message[: _MAX_MESSAGE - 1]}… ({len(message):,} characters)"
        print(f"actmix-study: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("actmix-study: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except LowDiskSpace as error:
        print(f"actmix-study: error: {error.strerror}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:
        if not disk_full_error(error):
            raise
        # the libraries' own chained tracebacks say it in hundreds of lines
        where = (
            f" (store {args.store}: {megabytes(free_bytes(args.store))} free)"
            if getattr(args, "store", None)
            else ""
        )
        print(
            f"actmix-study: error: the disk is full{where}; free space, then rerun or "
            "resume: finished work is kept",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
