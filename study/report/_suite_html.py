"""Write a suite's report: ``report.json``, a self-contained ``report.html`` and its PNGs."""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from typing import Any

from study.report._render import escape, fixed, html_table, number, p_value, plural
from study.report._suite import SuiteReport, build_suite_report
from study.report._suite_markdown import markers, render_markdown, replace_block
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
        begin, end = markers(suite.name)
        if begin not in readme_text or end not in readme_text:
            raise ValueError(
                f"{readme}: no results block of suite {suite.name!r}; add the lines {begin} "
                f"and {end}"
            )
    report = build_suite_report(suite, store=store)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(report, out)
    data = report.to_dict()
    data["figures"] = {name: path.name for name, path in figures.items()}
    json_path = out / "report.json"
    # allow_nan=False: other tools read this file; a missing value is null, never NaN
    json_path.write_text(json.dumps(_nulls(data), indent=1, allow_nan=False))
    plain = json.loads(json_path.read_text())  # HTML and Markdown are functions of report.json
    html_path = out / "report.html"
    html_path.write_text(_html(plain, figures))
    markdown_path = out / "report.md"
    markdown_path.write_text(render_markdown(plain, figures="."))
    written = [json_path, html_path, markdown_path, *figures.values()]
    if readme is not None:
        relative = os.path.relpath(out.resolve(), Path(readme).resolve().parent)
        replace_block(
            readme, render_markdown(plain, figures=Path(relative).as_posix()), suite=suite.name
        )
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
    ranks = report.ranks.tuned
    if ranks is not None and report.ranks.draw_diagram:
        figure = plot_critical_difference(
            ranks.mean_ranks,
            ranks.critical_difference,
            title=f"{report.suite.name}: tuned models' mean ranks over "
            f"{plural(len(ranks.dataset_ranks), 'dataset')}",
        )
        figures["critical_difference"] = save_figure(figure, out / "critical_difference.png")
    else:  # a diagram left from an earlier rendering would contradict this one
        (out / "critical_difference.png").unlink(missing_ok=True)
    folds = report.suite.protocol.outer_folds
    for dataset, rows in report.tables.items():
        figure, axis = plt.subplots(figsize=(7, 3.6))
        for row in rows:
            points = sorted(_fold_means(report, dataset, row.model).items())
            style = "-o" if row.kind == "tuned" else "--s"
            axis.plot(
                [repeat * folds + fold for (repeat, fold), _ in points],
                [value for _, value in points],
                style,
                label=row.model,
            )
        metric = rows[0].metric if rows else ""
        repeats = report.suite.protocol.repeats
        axis.set(
            xlabel="outer fold" if repeats == 1 else f"repeat x {folds} + outer fold",
            ylabel=f"test {metric}",
            title=f"{dataset}: outer-fold test {metric} (mean over seeds)",
        )
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # folds have no halves
        # beside the axes, not over the lines it names
        axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        figures[f"folds_{dataset}"] = save_figure(figure, out / f"folds_{dataset}.png")
    return figures


def _fold_means(report: SuiteReport, dataset: str, model: str) -> dict[tuple[int, int], float]:
    by_fold: dict[tuple[int, int], list[float]] = {}
    for row in report.results:
        if row["dataset"] == dataset and row["model"] == model:
            by_fold.setdefault((row["repeat"], row["outer_fold"]), []).append(row["value"])
    return {key: sum(values) / len(values) for key, values in by_fold.items()}


def _image(path: Path, alt: str) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{encoded}">'


def _p(found: dict[str, Any] | None) -> str:
    if not found:
        return "-"
    return p_value(
        found.get("p_holm"),
        significant=bool(found.get("significant")),
        floor=bool(found.get("at_floor")),
    )


def _dataset(report: dict[str, Any], dataset: str, rows: list[dict[str, Any]]) -> str:
    tests = {c["b"]: c for c in report["comparisons"] if c["dataset"] == dataset}
    cells = []
    for row in rows:
        test = tests.get(row["model"], {})
        boot = test.get("bootstrap") or {}
        cells.append(
            [
                escape(row["model"]),
                escape(row["kind"]),
                number(row["mean"]),
                number(row["std"]),
                str(row["outer_folds"]),
                fixed(test.get("mean_difference")),
                f"[{fixed(test.get('ci_low'))}, {fixed(test.get('ci_high'))}]" if test else "-",
                _p(test),
                fixed(boot.get("mean_difference")),
                _p(boot),
            ]
        )
    metric = rows[0]["metric"] if rows else "score"
    focus = report["focus"]
    return html_table(
        [
            "model",
            "kind",
            f"test {metric} mean",
            "std over outer folds",
            "outer-fold scores",
            f"{focus} minus model",
            "95 % interval (corrected t)",
            "p (corrected t, Holm)",
            f"{focus} minus model (pooled rows)",
            "p (bootstrap, Holm)",
        ],
        cells,
        numeric=set(range(2, 10)),
    )


def _checks(report: dict[str, Any]) -> str:
    return html_table(
        ["check", "dataset", "model", "value", "threshold", "verdict", "detail", "advice"],
        [
            [
                escape(c["check"]),
                escape(c["dataset"]),
                escape(c["model"]),
                number(c["value"], 2),
                number(c["threshold"], 2),
                f"<b>{escape(c['verdict'])}</b>" if c["verdict"] == "fail" else "pass",
                escape(c["detail"]),
                escape(c["advice"]) if c["verdict"] == "fail" else "",
            ]
            for c in report["budget_checks"]
        ],
        numeric={3, 4},
    )


def _ranks(report: dict[str, Any], figures: dict[str, Path]) -> list[str]:
    ranks = report["ranks"]
    if not ranks.get("mean_ranks"):
        return [f"<p>{escape(ranks.get('note') or 'no ranks')}</p>"]
    parts = [
        html_table(
            ["tuned model", "mean rank"],
            [[escape(m), number(r, 2)] for m, r in ranks["mean_ranks"].items()],
            numeric={1},
        ),
        f"<p>Friedman test over the tuned models: p = {number(ranks['friedman_p'])}"
        f"{'; ' + escape(ranks['friedman_note']) if ranks.get('friedman_note') else ''}.</p>",
    ]
    if ranks.get("references"):
        parts.append(
            html_table(
                ["reference", "mean rank among all rows"],
                [[escape(m), number(r, 2)] for m, r in ranks["references"].items()],
                numeric={1},
            )
        )
    if "critical_difference" in figures:
        parts.append(_image(figures["critical_difference"], "critical-difference diagram"))
    elif ranks.get("diagram_note"):
        parts.append(f"<p>{escape(ranks['diagram_note'])}.</p>")
    return parts


def _importances(report: dict[str, Any]) -> list[str]:
    importances = report["importances"]
    studies = "; ".join(
        f"{dataset}: {c['used']} of {c['total']} studies"
        + (f", {c['without_history']} without a trial history" if c["without_history"] else "")
        for dataset, c in importances["studies"].items()
    )
    parts = [f"<p>Rule: {escape(importances['rule'])}. Qualified: {escape(studies)}.</p>"]
    if importances["rows"]:
        parts.append(
            html_table(
                ["dataset", "parameter", "importance", "null mean", "p", "p (Holm)", "studies"],
                [
                    [
                        escape(r["dataset"]),
                        f"<code>{escape(r['param'])}</code>",
                        number(r["importance"], 3),
                        number(r["null_mean"], 3),
                        number(r["p_value"], 3),
                        p_value(r["p_holm"], significant=r["beats_null"]),
                        str(r["studies"]),
                    ]
                    for r in importances["rows"]
                ],
                numeric={2, 3, 4, 5, 6},
            )
        )
    else:
        parts.append("<p>No importance is reported.</p>")
    return parts


def _provenance(budget: dict[str, Any]) -> list[str]:
    rows = [
        [
            f"<code>{escape(entry['commit'])}</code>",
            escape(entry["machine"]),
            escape(entry["versions"]),
            str(entry["units"]),
            escape(f"{entry['first']} to {entry['last']}"),
        ]
        for entry in budget.get("ran_on", [])
    ]
    parts = []
    if rows:
        parts.append(html_table(["commit", "machine", "versions", "units", "when"], rows))
    if budget.get("not_recorded"):
        parts.append(
            f"<p>Machine, versions and commit were not recorded for {budget['not_recorded']} "
            "units (they ran before units recorded them).</p>"
        )
    sessions = budget.get("session_log", [])
    if sessions:
        parts.append(
            html_table(
                ["session started", "wall time", "units done before", "after", "commit"],
                [
                    [
                        escape(s["started"]),
                        _seconds(s["seconds"])
                        + (" (killed: to its last unit)" if s.get("estimated") else ""),
                        str(s["done_before"]),
                        str(s["done_after"]),
                        escape(s.get("provenance", {}).get("commit", "not recorded")),
                    ]
                    for s in sessions
                ],
            )
        )
    return parts


def _html(report: dict[str, Any], figures: dict[str, Path]) -> str:
    budget = report["budget"]
    parts = [
        f"<h1>Suite {escape(report['suite'])}</h1>",
        f"<p class=answer>{escape(report['answer'])}</p>",
        "<p>Nested cross-validation: every study saw only its outer fold's training rows; "
        "each tuned model's best trial (by inner validation) was retrained there and scored "
        "once on the outer-test rows. Primary p-values: the corrected resampled t-test "
        "(Nadeau &amp; Bengio) on the outer-fold scores of every repeat, Holm-corrected "
        "within each dataset. Secondary: a paired bootstrap over rows of the first repeat's "
        "pooled out-of-fold predictions (test-row noise only; '(floor)' marks its smallest "
        "possible p-value).</p>",
        "<h2>Budget checks</h2>",
        _checks(report),
    ]
    for dataset, rows in report["tables"].items():
        parts += [f"<h2>{escape(dataset)}</h2>", _dataset(report, dataset, rows)]
        if f"folds_{dataset}" in figures:
            parts.append(_image(figures[f"folds_{dataset}"], f"outer folds of {dataset}"))
    parts += ["<h2>Ranks across datasets</h2>", *_ranks(report, figures)]
    parts += [f"<h2>Which knobs of {escape(report['focus'])} mattered</h2>"]
    parts += _importances(report)
    parts += [
        "<h2>Budget and provenance</h2>",
        f"<pre>{escape(budget['suite_file'])}</pre>",
        f"<p>{budget['units']} units; wall time {_seconds(budget['wall_seconds'])} in "
        f"{budget['sessions']} session(s), {budget['unit_seconds']:.0f} s in the units.</p>",
        *_provenance(budget),
    ]
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px}td.num{text-align:right}"
        ".answer{font-weight:bold}"
    )
    body = "\n".join(parts)
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{escape(report['suite'])}"
        f"</title><style>{style}</style></head><body>{body}</body></html>\n"
    )


def _seconds(value: float | None) -> str:
    return "not recorded" if value is None else f"{value:.0f} s"
