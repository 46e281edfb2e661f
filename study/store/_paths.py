"""Where a study's local stores live, and the CLI options that choose them (no Ray import)."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

__all__ = [
    "DEFAULT_STORE",
    "TRACKING_URI_VARIABLE",
    "add_store_options",
    "default_store_uris",
    "environment_tracking_uri",
    "manifest_path",
    "store_flags",
    "store_folder",
    "tracking_uri",
]

DEFAULT_STORE = "actmix-runs"
# what MLflow's own tools read when no tracking URI is given; the CLI does the same
TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"


def default_store_uris(store: Path) -> tuple[str, str]:
    """MLflow and Optuna SQLite URIs inside ``store``."""
    return f"sqlite:///{store / 'mlflow.db'}", f"sqlite:///{store / 'optuna.db'}"


def store_folder(store: str | Path) -> Path:
    """The absolute folder of a store given as the user wrote it (``~`` expanded)."""
    return Path(store).expanduser().resolve()


def manifest_path(store: str | Path, name: str) -> Path:
    """``<store>/studies/<name>.json``: the manifest ``resume NAME`` rebuilds a study from."""
    return store_folder(store) / "studies" / f"{name}.json"


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE,
        help=f"folder of the local stores (default {DEFAULT_STORE})",
    )
    parser.add_argument(
        "--tracking-uri",
        help=f"MLflow tracking URI (default ${TRACKING_URI_VARIABLE}, else sqlite in --store)",
    )


def environment_tracking_uri() -> str | None:
    """``$MLFLOW_TRACKING_URI``, the tracking URI of every command given no ``--tracking-uri``."""
    return os.environ.get(TRACKING_URI_VARIABLE) or None


def store_flags(*, store: str, uri: str | None = None) -> str:
    """The store options a printed command needs (shell-quoted), empty for the defaults.

    ``uri`` is repeated unless it is the SQLite store inside ``store``.
    """
    folder = store_folder(store)
    flags = [] if folder == Path(DEFAULT_STORE).resolve() else ["--store", store]
    if uri and uri != default_store_uris(folder)[0]:
        flags += ["--tracking-uri", uri]
    return "".join(f" {shlex.quote(flag)}" for flag in flags)


def tracking_uri(args: argparse.Namespace, *, must_exist: bool) -> str:
    """``--tracking-uri``, else the SQLite store in ``--store`` (optionally required to exist)."""
    if args.tracking_uri:
        from study.tracking import check_tracking_uri

        check_tracking_uri(args.tracking_uri)  # one line now, not MLflow's retries later
        return args.tracking_uri
    store = store_folder(args.store)
    if must_exist and not (store / "mlflow.db").is_file():
        raise FileNotFoundError(
            f"no MLflow store at {store}; run a study first or pass --store/--tracking-uri"
        )
    return default_store_uris(store)[0]
