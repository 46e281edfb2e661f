"""Write a :class:`study.report.Report` as one self-contained HTML file, JSON and PNGs.

The HTML embeds its figures (base64 PNG) and its style, so it can be mailed or attached
to a paper's supplement as a single file; the PNGs are written next to it as well.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import time
from pathlib import Path

from actmix.plots import (
    plot_fold_scores,
    plot_optimisation_history,
    plot_param_importances,
    save_figure,
)
from study.report import RESULT_FILES, Comparison, FinalRun, Report, StudyHistory

__all__ = ["SIGNIFICANCE", "verdict", "write_report"]

SIGNIFICANCE = 0.05

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
    """One phrase: which model is better on these folds, and whether the test says so."""
    test = comparison.test
    if test is None:
        return comparison.note or "not tested"
    if test.p_value < SIGNIFICANCE and test.better != "tie":
        winner = comparison.reference.model if test.better == "A" else comparison.other_model
        return f"{winner} better (p < {SIGNIFICANCE})"
    return f"no significant difference at {SIGNIFICANCE}"


def _e(value: object) -> str:
    return html.escape(str(value))


def _number(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


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


def _leaderboard(runs: list[FinalRun]) -> str:
    rows = [
        [
            str(rank),
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
    headers = ["#", "model", "run", "experiment", f"test {metric} ({better} is better)"]
    headers += ["folds x seeds", "splits", "run id / file"]
    return _table(headers, rows, numeric={0, 4})


def _comparisons(comparisons: list[Comparison]) -> str:
    rows = []
    for c in comparisons:
        test = c.test
        rows.append(
            [
                f"{_e(c.reference.model)} vs <b>{_e(c.other_model)}</b>",
                str(test.n) if test else "",
                _number(test.mean_difference) if test else "",
                f"{test.wins} / {test.losses} / {test.ties}" if test else "",
                _number(test.statistic, 1) if test else "",
                _number(test.p_value) if test else "",
                _e(verdict(c)),
            ]
        )
    headers = ["comparison", "folds", "mean difference", "wins / losses / ties", "W", "p"]
    text = _table([*headers, "verdict"], rows, numeric={1, 2, 4, 5})
    smallest = min((c.test.n for c in comparisons if c.test), default=None)
    if smallest is not None and 2 / 2**smallest >= SIGNIFICANCE:
        text += (
            f'<p class="note">With {smallest} folds the smallest possible two-sided p-value is '
            f"2/2<sup>{smallest}</sup> = {2 / 2**smallest:.4f}: no difference can be significant "
            f"at {SIGNIFICANCE}. Use at least 6 folds (10 is usual) for the final CV.</p>"
        )
    return text


def _dataset_section(report: Report, dataset: str, figures: _Figures) -> str:
    runs = report.leaderboard(dataset)
    parts = [f"<h2>{_e(dataset)}</h2>", _leaderboard(runs)]
    by_fold = {f"{run.model} ({run.name})": run.per_fold for run in runs}
    figure = plot_fold_scores(by_fold, metric=runs[0].metric, title=f"{dataset}: test per fold")
    parts.append(figures.embed(figure, f"folds-{_slug(dataset)}", f"{dataset} per-fold scores"))
    comparisons = [c for c in report.comparisons if c.dataset == dataset]
    if comparisons:
        parts.append("<h3>Paired tests (Wilcoxon signed-rank, two-sided, per-fold scores)</h3>")
        parts.append(_comparisons(comparisons))
    else:
        parts.append('<p class="note">No actmix final run on this dataset, so no paired tests.</p>')
    return "\n".join(parts)


def _ranks(report: Report) -> str:
    parts = ["<h2>Mean ranks across datasets</h2>"]
    if report.ranks:
        datasets = sorted(report.dataset_ranks)
        rows = [
            [f"<b>{_e(model)}</b>", _number(mean, 2)]
            + [_number(report.dataset_ranks[d][model], 1) for d in datasets]
            for model, mean in report.ranks.items()
        ]
        headers = ["model", "mean rank", *datasets]
        parts.append(_table(headers, rows, numeric=set(range(1, len(headers)))))
        parts.append(
            '<p class="note">Rank 1 is the best mean test score on a dataset (each model '
            "represented by its best final run); tied scores share the mean rank.</p>"
        )
    if report.rank_note:
        parts.append(f'<p class="note">{_e(report.rank_note)}</p>')
    return "\n".join(parts)


def _study_section(report: Report, history: StudyHistory, figures: _Figures) -> str:
    name = history.study
    parts = [f"<h2>Study {_e(name)}</h2>"]
    if history.states:
        states = ", ".join(f"{count} {state.lower()}" for state, count in history.states.items())
        parts.append(
            f"<p>Optuna trials: {_e(states)}; objective {_e(history.objective)}. Trials "
            "stopped early by ASHA count as complete, with their last reported value.</p>"
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
        '<p class="note">Leaderboards use the final CV runs (<code>stage=final</code>): '
        "test scores on outer folds, mean ± std over folds x seeds. Paired tests compare the "
        "best actmix run with the best run of every other model on the same folds (same "
        "splits fingerprint), one score per fold (the mean over its seeds); the mean "
        "difference is actmix minus the other model.</p>",
    ]
    if not report.runs:
        sections.append('<p class="note">No final CV runs in these sources.</p>')
    for dataset in report.datasets:
        sections.append(_dataset_section(report, dataset, figures))
    if report.runs:
        sections.append(_ranks(report))
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
