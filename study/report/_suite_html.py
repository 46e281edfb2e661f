"""Write a suite's report: ``report.json``, a self-contained ``report.html`` and its PNGs."""

from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path
from typing import Any

from study.report._suite import SuiteReport, build_suite_report
from study.report._suite_markdown import BEGIN, END, render_markdown, replace_block
from study.store import DEFAULT_STORE
from study.suite import Suite

__all__ = ["write_suite_report"]


def write_suite_report(
    suite: Suite, *, store: str = DEFAULT_STORE, out: str | Path, readme: str | Path | None = None
) -> list[Path]:
    """Compute the report from the store and write it under ``out``; returns the files.

    ``readme``: a Markdown file whose results block (see :mod:`study.report._suite_markdown`) is
    replaced with this report, its image links relative to that file.
    """
    if readme is not None:
        readme_text = Path(readme).read_text(encoding="utf-8")  # a bad path fails before work
        if BEGIN not in readme_text or END not in readme_text:
            raise ValueError(f"{readme}: no results block; add the lines {BEGIN} and {END}")
    report = build_suite_report(suite, store=store)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(report, out)
    data = report.to_dict()
    data["figures"] = {name: path.name for name, path in figures.items()}
    json_path = out / "report.json"
    # allow_nan=False: other tools read this file; a missing value is null, never NaN
    json_path.write_text(json.dumps(_nulls(data), indent=1, allow_nan=False))
    html_path = out / "report.html"
    html_path.write_text(_html(report, figures))
    plain = json.loads(json_path.read_text())  # the Markdown is a function of report.json
    markdown_path = out / "report.md"
    markdown_path.write_text(render_markdown(plain, figures="."))
    written = [json_path, html_path, markdown_path, *figures.values()]
    if readme is not None:
        relative = os.path.relpath(out.resolve(), Path(readme).resolve().parent)
        replace_block(readme, render_markdown(plain, figures=Path(relative).as_posix()))
        written.append(Path(readme))
    return written


def _nulls(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _nulls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulls(v) for v in value]
    return value


def _figures(report: SuiteReport, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from actmix.cd_diagram import plot_critical_difference
    from actmix.plots import save_figure

    figures: dict[str, Path] = {}
    ranks = report.ranks
    if ranks is not None and math.isfinite(ranks.critical_difference):
        figure = plot_critical_difference(
            ranks.mean_ranks,
            ranks.critical_difference,
            title=f"{report.suite.name}: mean ranks over {len(ranks.dataset_ranks)} datasets",
        )
        figures["critical_difference"] = save_figure(figure, out / "critical_difference.png")
    for dataset, rows in report.tables.items():
        figure, axis = plt.subplots(figsize=(7, 3.6))
        for row in rows:
            points = sorted(
                (r["outer_fold"], r["value"]) for r in _fold_means(report, dataset, row["model"])
            )
            style = "-o" if row["kind"] == "tuned" else "--s"
            axis.plot([p[0] for p in points], [p[1] for p in points], style, label=row["model"])
        metric = rows[0]["metric"] if rows else ""
        axis.set(
            xlabel="outer fold",
            ylabel=f"test {metric}",
            title=f"{dataset}: outer-fold test {metric} (mean over seeds)",
        )
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # folds have no halves
        axis.legend(fontsize=7, ncol=2)
        figures[f"folds_{dataset}"] = save_figure(figure, out / f"folds_{dataset}.png")
    return figures


def _fold_means(report: SuiteReport, dataset: str, model: str) -> list[dict[str, Any]]:
    by_fold: dict[int, list[float]] = {}
    for row in report.results:
        if row["dataset"] == dataset and row["model"] == model:
            by_fold.setdefault(row["outer_fold"], []).append(row["value"])
    return [
        {"outer_fold": fold, "value": sum(values) / len(values)} for fold, values in by_fold.items()
    ]


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_number(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(path: Path, alt: str) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _html(report: SuiteReport, figures: dict[str, Path]) -> str:
    suite = report.suite
    parts = [
        f"<h1>Suite {html.escape(suite.name)}</h1>",
        f"<p class=answer>{html.escape(report.answer)}</p>",
        "<p>Nested cross-validation: every study saw only its outer fold's training rows; "
        "each tuned model's best trial (by inner validation) was retrained there and scored "
        "once on the outer-test rows. p-values: Wilcoxon signed-rank on outer-fold scores "
        "(needs at least 6 folds) and a paired bootstrap over rows of the pooled "
        "out-of-fold predictions, each Holm-corrected within its dataset.</p>",
    ]
    for dataset, rows in report.tables.items():
        parts.append(f"<h2>{html.escape(dataset)}</h2>")
        tests = {(c["b"], c["test"]): c for c in report.comparisons if c["dataset"] == dataset}
        table_rows = []
        for row in rows:
            boot = tests.get((row["model"], "bootstrap"), {})
            wil = tests.get((row["model"], "wilcoxon"), {})
            table_rows.append(
                [
                    row["model"],
                    row["kind"],
                    row["mean"],
                    row["std"],
                    row["outer_folds"],
                    boot.get("mean_difference"),
                    boot.get("p_holm"),
                    wil.get("p_holm"),
                ]
            )
        parts.append(
            _table(
                [
                    "model",
                    "kind",
                    f"test {rows[0]['metric']} mean" if rows else "mean",
                    "std over outer folds",
                    "outer folds",
                    f"{suite.focus} minus model",
                    "p (bootstrap, Holm)",
                    "p (Wilcoxon, Holm)",
                ],
                table_rows,
            )
        )
        if f"folds_{dataset}" in figures:
            parts.append(_image(figures[f"folds_{dataset}"], f"outer folds of {dataset}"))
    parts.append("<h2>Across datasets</h2>")
    if report.ranks is not None:
        ranks = report.ranks
        parts.append(_table(["model", "mean rank"], [[m, r] for m, r in ranks.mean_ranks.items()]))
        parts.append(
            f"<p>Friedman p = {_number(ranks.friedman.p_value)}"
            f"{'; ' + html.escape(ranks.friedman.note) if ranks.friedman.note else ''}. "
            f"Nemenyi critical difference {_number(ranks.critical_difference, 2)}.</p>"
        )
    else:
        parts.append(f"<p>{html.escape(report.ranks_note or '')}</p>")
    if "critical_difference" in figures:
        parts.append(_image(figures["critical_difference"], "critical-difference diagram"))
    parts.append(f"<h2>Which knobs of {html.escape(suite.focus)} mattered</h2>")
    parts.append(
        "<p>fANOVA importances from each study's completed trials, averaged over the "
        "outer folds' studies.</p>"
    )
    parts.append(
        _table(
            ["dataset", "param", "importance", "studies"],
            [[r["dataset"], r["param"], r["importance"], r["studies"]] for r in report.importances],
        )
    )
    parts.append("<h2>Budget</h2>")
    parts.append(f"<pre>{html.escape(suite.text)}</pre>")
    parts.append(
        f"<p>{report.budget['units']} units; wall time {_seconds(report.budget['wall_seconds'])} "
        f"in {report.budget['sessions']} session(s), {report.budget['unit_seconds']:.0f} s in "
        f"the units; on {html.escape(str(report.budget['machine']))}.</p>"
    )
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:auto}"
        "table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        ".answer{font-weight:bold}"
    )
    body = "\n".join(parts)
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(suite.name)}"
        f"</title><style>{style}</style></head><body>{body}</body></html>\n"
    )


def _seconds(value: float | None) -> str:
    return "not recorded" if value is None else f"{value:.0f} s"
