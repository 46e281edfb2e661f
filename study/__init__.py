"""Orchestration: Ray Tune, Optuna, MLflow and the actmix-study CLI."""
