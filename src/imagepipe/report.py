"""The evaluation report of a model version: the verdict with every check, the candidate-versus-champion table, and
per-class rows, in Markdown and HTML from the same rows, and the confusion matrix as a PNG (matplotlib)."""

from __future__ import annotations

import html
import io
import json

from imagepipe.gate import explain

SUMMARY_METRICS = ("accuracy", "macro_f1", "weighted_f1", "log_loss", "rows")


def _format(value) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _model_rows(metadata: dict) -> list[list[str]]:
    """What the version is made of: its feature space (with the image preprocessing) and its classifier."""
    model = metadata.get("model") or {}
    listed = lambda items: ", ".join(items) if items else "none"  # noqa: E731
    return [
        ["feature space", metadata.get("fingerprint", "–")],
        ["image preprocessing", listed(metadata.get("preprocessing") or [])],
        ["classifier", model.get("classifier", "–")],
        ["hyperparameters", json.dumps(metadata.get("hyperparameters"), sort_keys=True)],
        ["feature transforms", listed(model.get("feature_transforms") or [])],
        ["transforms in the model", listed(model.get("fitted_transforms", model.get("feature_transforms")) or [])],
        ["class weights", model.get("class_weights", "–")],
    ]


def sections(metadata: dict, candidate: dict, champion: dict | None,
             verdict: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for each table of the report."""
    version = metadata["version"]
    champion_name = "none" if champion is None else f"champion v{champion['version']}"
    comparison = []
    for metric in SUMMARY_METRICS:
        mine, theirs = candidate.get(metric), None if champion is None else champion.get(metric)
        change = mine - theirs if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)) else None
        comparison.append([metric, _format(mine), _format(theirs), _format(change)])
    labels = sorted(set(candidate["per_class"]) | set((champion or {}).get("per_class", {})))
    per_class = []
    for label in labels:
        mine = candidate["per_class"].get(label, {})
        theirs = (champion or {}).get("per_class", {}).get(label, {})
        per_class.append([label, _format(mine.get("support")), _format(mine.get("precision")),
                          _format(mine.get("recall")), _format(mine.get("f1")), _format(theirs.get("recall")),
                          _format(theirs.get("f1"))])
    checks = [["PASS" if check["passed"] else "FAIL", check["name"], check["metric"], _format(check["observed"]),
               _format(check["threshold"])] for check in verdict["checks"]]
    return [
        (f"Model v{version}", ["property", "value"], _model_rows(metadata)),
        (f"Candidate v{version} against {champion_name}",
         ["metric", f"candidate v{version}", champion_name, "change"], comparison),
        ("Per class (test split)",
         ["class", "support", "precision", "recall", "F1", "champion recall", "champion F1"], per_class),
        ("Gate checks", ["result", "check", "metric", "observed", "threshold"], checks),
    ]


def _title(version: int, verdict: dict) -> str:
    return f"Model version {version}: gate {'PASSED' if verdict['passed'] else 'FAILED'}"


def markdown(metadata: dict, candidate: dict, champion: dict | None, verdict: dict) -> str:
    lines = [f"# {_title(metadata['version'], verdict)}", ""]
    lines += [f"- {line}" for line in explain(verdict)] + [""]
    for title, header, rows in sections(metadata, candidate, champion, verdict):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    lines += ["![confusion matrix](confusion_matrix.png)", ""]
    return "\n".join(lines)


def html_page(metadata: dict, candidate: dict, champion: dict | None, verdict: dict) -> str:
    escape = html.escape
    version = metadata["version"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(_title(version, verdict))}</title>",
             "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;"
             "padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>",
             f"<h1>{escape(_title(version, verdict))}</h1><ul>"]
    parts += [f"<li>{escape(line)}</li>" for line in explain(verdict)] + ["</ul>"]
    for title, header, rows in sections(metadata, candidate, champion, verdict):
        header_cells = "".join(f"<th>{escape(cell)}</th>" for cell in header)
        parts.append(f"<h2>{escape(title)}</h2><table><tr>{header_cells}</tr>")
        parts += ["<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows]
        parts.append("</table>")
    parts.append("<h2>Confusion matrix</h2><img src='confusion_matrix.png' alt='confusion matrix'></body></html>")
    return "\n".join(parts)


def confusion_matrix_figure(version: int, confusion: dict):
    """Rows are the true labels, columns the predicted ones, each cell annotated with its count."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers
    from matplotlib.figure import Figure

    labels, counts = confusion["labels"], confusion["counts"]
    size = max(4.0, 0.6 * len(labels) + 2)
    figure = Figure(figsize=(size, size))
    axes = figure.subplots()
    image = axes.imshow(counts or [[0]], cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    axes.set_title(f"Confusion matrix, version {version} (test split)")
    peak = max((max(row) for row in counts), default=0)
    for row, values in enumerate(counts):
        for column, count in enumerate(values):
            axes.text(column, row, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    return figure


def confusion_matrix_png(version: int, confusion: dict) -> bytes:
    buffer = io.BytesIO()
    confusion_matrix_figure(version, confusion).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
