"""Where a study's local stores live, and the CLI options that choose them (no Ray import)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["DEFAULT_STORE", "add_store_options", "default_store_uris", "tracking_uri"]

DEFAULT_STORE = "actmix-runs"


def default_store_uris(store: Path) -> tuple[str, str]:
    """MLflow and Optuna SQLite URIs inside ``store``."""
    return f"sqlite:///{store / 'mlflow.db'}", f"sqlite:///{store / 'optuna.db'}"


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE,
        help=f"folder of the local stores (default {DEFAULT_STORE})",
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default sqlite in --store)")


def tracking_uri(args: argparse.Namespace, *, must_exist: bool) -> str:
    """``--tracking-uri``, else the SQLite store in ``--store`` (optionally required to exist)."""
    if args.tracking_uri:
        return args.tracking_uri
    store = Path(args.store).expanduser().resolve()
    if must_exist and not (store / "mlflow.db").is_file():
        raise FileNotFoundError(
            f"no MLflow store at {store}; run a study first or pass --store/--tracking-uri"
        )
    return default_store_uris(store)[0]
