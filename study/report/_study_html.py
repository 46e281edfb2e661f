"""Write a :class:`study.report.Report` as one self-contained HTML file, JSON and PNGs.

The HTML embeds its figures (base64 PNG) and its style, so it can be mailed or attached
to a paper's supplement as a single file; the PNGs are written next to it as well.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

from actmix.cd_diagram import plot_critical_difference
from actmix.comparison import ALPHA, min_wilcoxon_folds
from actmix.plots import (
    plot_fold_scores,
    plot_optimisation_history,
    plot_param_importances,
    save_figure,
)
from study.report._render import escape as _e
from study.report._render import fixed as _fixed
from study.report._render import html_table as _table
from study.report._render import number as _number
from study.report._study import RESULT_FILES, Comparison, FinalRun, Report, StudyHistory

__all__ = ["verdict", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 62em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
.note { color: #666; font-size: 0.9em; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""


def verdict(comparison: Comparison) -> str:
    """One phrase: which model is better on average, and whether the Holm-corrected test agrees.

    The winner is the side the mean difference favours, never the one with more fold wins.
    """
    test = comparison.test
    if test is None:
        return comparison.note or "not tested"
    winner = {"a": comparison.reference.model, "b": comparison.other_model}.get(test.better)
    if comparison.p_holm is None:
        on_average = f"{winner} better on average" if winner else "equal on average"
        return f"{on_average}, not tested ({test.n} folds < {min_wilcoxon_folds(ALPHA)})"
    if winner and comparison.p_holm < ALPHA:
        return f"{winner} better (Holm p < {ALPHA})"
    return f"no significant difference at {ALPHA} (Holm)"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


class _Figures:
    """Saves figures into the output folder and embeds them in the page."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.files: list[Path] = []

    def embed(self, figure, name: str, alt: str) -> str:
        path = save_figure(figure, self.out / f"{name}.png")
        self.files.append(path)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _run_id(run: FinalRun) -> str:
    """An MLflow run id, shortened, or the name of the result file the run came from."""
    return Path(run.run_id).name if run.experiment == RESULT_FILES else run.run_id[:12]


def _leaderboard(runs: list[FinalRun], compared: set[str]) -> str:
    rows = [
        [
            str(rank),
            "yes" if run.run_id in compared else "",
            f"<b>{_e(run.model)}</b>",
            _e(run.name),
            _e(run.experiment),
            f"{_number(run.mean)} ± {_number(run.std)}",
            f"{run.folds} x {len(run.seeds)}",
            f"<code>{_e(run.fingerprint[:12])}</code>",
            f"<code>{_e(_run_id(run))}</code>",
        ]
        for rank, run in enumerate(runs, start=1)
    ]
    metric = runs[0].metric
    better = "lower" if runs[0].lower_is_better else "higher"
    headers = ["#", "compared", "model", "run", "experiment"]
    headers += [f"test {metric} ({better} is better)", "folds x seeds", "splits", "run id / file"]
    return _table(headers, rows, numeric={0, 5})


def _comparisons(comparisons: list[Comparison]) -> str:
    rows = []
    for c in comparisons:
        test = c.test
        rows.append(
            [
                f"{_e(c.reference.model)} vs <b>{_e(c.other_model)}</b>",
                _e(test.test) if test else "",
                str(test.n) if test else "",
                _fixed(test.mean_difference) if test else "",
                f"{test.wins} / {test.losses} / {test.ties}" if test else "",
                _optional(test.statistic, 1) if test else "",
                _optional(test.p_value) if test else "",
                _optional(c.p_holm),
                _e(verdict(c)),
            ]
        )
    headers = ["comparison", "test", "folds", "mean difference", "wins / losses / ties", "W"]
    headers += ["p", "p (Holm)", "verdict"]
    text = _table(headers, rows, numeric={2, 3, 5, 6, 7})
    smallest = min((c.test.n for c in comparisons if c.test), default=None)
    needed = min_wilcoxon_folds(ALPHA)
    if smallest is not None and smallest < needed:
        text += (
            f'<p class="note">With {smallest} folds the smallest possible two-sided p-value is '
            f"2/2<sup>{smallest}</sup> = {2 / 2**smallest:.4f}: no difference can be significant "
            f"at {ALPHA}, so no p-value is given. Use at least {needed} folds (10 is usual) "
            "for the final CV.</p>"
        )
    return text


def _optional(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else _number(value, digits)


def _dataset_section(report: Report, dataset: str, figures: _Figures) -> str:
    runs = report.leaderboard(dataset)
    compared = {run.run_id for run in report.compared(dataset).values()}
    parts = [f"<h2>{_e(dataset)}</h2>", _leaderboard(runs, compared)]
    by_fold = {f"{run.model} ({run.name})": run.per_fold for run in runs}
    figure = plot_fold_scores(by_fold, metric=runs[0].metric, title=f"{dataset}: test per fold")
    parts.append(figures.embed(figure, f"folds-{_slug(dataset)}", f"{dataset} per-fold scores"))
    comparisons = [c for c in report.comparisons if c.dataset == dataset]
    if comparisons:
        parts.append(
            "<h3>Paired tests (Wilcoxon signed-rank, two-sided, one score per fold; "
            "p-values Holm-corrected over this dataset's comparisons)</h3>"
        )
        parts.append(_comparisons(comparisons))
    else:
        parts.append(f'<p class="note">No paired tests: {_e(_why_untested(runs))}.</p>')
    return "\n".join(parts)


def _why_untested(runs: list[FinalRun]) -> str:
    """Why a dataset's final runs gave no comparison (the reference model is actmix)."""
    models = {run.model for run in runs}
    if "actmix" not in models:
        return "no actmix final run on this dataset to compare the others with"
    if models == {"actmix"}:
        return "only actmix has final runs on this dataset, so there is nothing to compare"
    return (
        "no other model has a final run on the same folds and data (splits fingerprint) "
        "as the latest actmix run; rerun them with its splits (cv --splits)"
    )


def _ranks(report: Report, figures: _Figures) -> str:
    parts = ["<h2>Mean ranks across datasets</h2>"]
    ranking = report.ranking
    if ranking:
        datasets = sorted(ranking.dataset_ranks)
        rows = [
            [f"<b>{_e(model)}</b>", _number(mean, 2)]
            + [_number(ranking.dataset_ranks[d][model], 1) for d in datasets]
            for model, mean in ranking.mean_ranks.items()
        ]
        headers = ["model", "mean rank", *datasets]
        parts.append(_table(headers, rows, numeric=set(range(1, len(headers)))))
        friedman = ranking.friedman
        parts.append(
            '<p class="note">Rank 1 is the best mean test score on a dataset (each model '
            "represented by its compared run); tied scores share the mean rank. Friedman test: "
            f"p = {_optional(friedman.p_value)}"
            + (f" ({_e(friedman.note)})" if friedman.note else "")
            + f". Nemenyi critical difference at {ranking.alpha}: "
            f"{_number(ranking.critical_difference, 2)}.</p>"
        )
        figure = plot_critical_difference(
            ranking.mean_ranks, ranking.critical_difference, title="Critical difference"
        )
        parts.append(figures.embed(figure, "critical-difference", "critical-difference diagram"))
    if report.rank_note:
        parts.append(f'<p class="note">{_e(report.rank_note)}</p>')
    return "\n".join(parts)


def _study_section(report: Report, history: StudyHistory, figures: _Figures) -> str:
    name = history.study
    parts = [f"<h2>Study {_e(name)}</h2>"]
    if history.states:
        states = ", ".join(f"{count} {state.lower()}" for state, count in history.states.items())
        parts.append(
            f"<p>Optuna trials: {_e(states)}; objective {_e(history.objective)}. The "
            "history and the importances use the complete trials; pruned ones (stopped early "
            "by ASHA) are left out, their last value being from fewer epochs.</p>"
        )
    if history.numbers:
        figure = plot_optimisation_history(
            history.numbers,
            history.values,
            history.best_so_far,
            objective=history.objective.split(" ")[0],
            title=f"{name}: optimisation history",
        )
        parts.append(figures.embed(figure, f"history-{_slug(name)}", f"{name} history"))
    if history.importances:
        figure = plot_param_importances(history.importances, title=f"{name}: importance")
        parts.append(figures.embed(figure, f"importance-{_slug(name)}", f"{name} importance"))
        parts.append(
            '<p class="note">fANOVA importance: the share of the objective\'s variance over '
            "completed trials explained by each parameter. A large share for the temperature, "
            "relu bias, omega or entropy parameters means that choice mattered in this "
            "search.</p>"
        )
    if history.note:
        parts.append(f'<p class="note">{_e(history.note)}</p>')
    board = report.trial_boards.get(name)
    if board is not None:
        parts.append(
            '<p class="note">No final CV run in this study yet: the table ranks trials by '
            "their inner-validation score. For test scores, run <code>actmix-study "
            f"export-best --study {_e(name)} --out best.yaml</code> and <code>actmix-study cv "
            "--config best.yaml</code>.</p>"
        )
        rows = [
            [
                str(r["rank"]),
                _e(r["trial"]),
                _e(r["status"]),
                _number(r["value"]),
                _number(r["std"]),
                f"<code>{_e(str(r['run_id'])[:12])}</code>",
            ]
            for r in board
        ]
        metric = board[0]["metric"] if board else "value"
        headers = ["#", "trial", "status", str(metric), "std", "run id"]
        parts.append(_table(headers, rows, numeric={0, 3, 4}))
    return "\n".join(parts)


def write_report(report: Report, out: str | Path) -> list[Path]:
    """Write ``report.html`` (self-contained), ``report.json`` and the PNGs into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = _Figures(out)
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.created))
    sections = [
        "<h1>ActMix Study report</h1>",
        f"<p>{_e(created)} · sources: {_e(', '.join(report.sources))}"
        + (f" · store <code>{_e(report.tracking_uri)}</code>" if report.tracking_uri else "")
        + "</p>",
        '<p class="note">Leaderboards list every final CV run (<code>stage=final</code>): '
        "test scores on outer folds, mean ± std over folds x seeds. No run is chosen by its "
        "test score: on each dataset the compared folds are those of the most recent actmix "
        "run, and each model is represented (column <i>compared</i>) by its most recent "
        "final run on exactly those folds and data (same splits fingerprint). Paired tests "
        "use one score per fold (the mean over its seeds); the mean difference is actmix "
        "minus the other model, and the verdict's winner is the side it favours, not the "
        "side with more fold wins.</p>",
    ]
    if not report.runs:
        sections.append('<p class="note">No final CV runs in these sources.</p>')
    for dataset in report.datasets:
        sections.append(_dataset_section(report, dataset, figures))
    if report.runs:
        sections.append(_ranks(report, figures))
    for history in report.histories:
        sections.append(_study_section(report, history, figures))
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>ActMix Study report</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
    html_path = out / "report.html"
    html_path.write_text(page, encoding="utf-8")
    json_path = out / "report.json"
    data = report.to_dict()
    data["comparisons"] = [{**c.to_dict(), "verdict": verdict(c)} for c in report.comparisons]
    json_path.write_text(json.dumps(data, indent=2, default=str, allow_nan=True))
    return [html_path, json_path, *figures.files]
