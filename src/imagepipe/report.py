"""The evaluation report of a model version: the verdict with every check, the candidate-versus-champion table,
per-class rows, the pictures (imagepipe.charts) and the gallery of test images (imagepipe.gallery), in Markdown and
HTML from the same rows. The UI's version page shows the same sections and gallery (imagepipe.airflow.ui.pages)."""

from __future__ import annotations

import html
import json

from imagepipe import charts
from imagepipe.features import describe_backbone
from imagepipe.gate import Verdict, explain

SUMMARY_METRICS = ("accuracy", "macro_f1", "weighted_f1", "log_loss", "rows")
OPEN_ROWS = 30  # a longer table (per class, with many classes) is folded into a block that scrolls


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
        ["backbone", describe_backbone(metadata.get("backbone"))],
        ["image preprocessing", listed(metadata.get("preprocessing") or [])],
        ["classifier", model.get("classifier", "–")],
        ["hyperparameters", json.dumps(metadata.get("hyperparameters"), sort_keys=True)],
        ["feature transforms", listed(model.get("feature_transforms") or [])],
        ["transforms in the model", listed(model.get("fitted_transforms", model.get("feature_transforms")) or [])],
        ["class weights", model.get("class_weights", "–")],
    ]


def sections(metadata: dict, candidate: dict, champion: dict | None,
             verdict: Verdict) -> list[tuple[str, list[str], list[list[str]]]]:
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
    checks = [["PASS" if check.passed else "FAIL", check.name, check.metric, _format(check.observed),
               _format(check.threshold)] for check in verdict.checks]
    return [
        (f"Model v{version}", ["property", "value"], _model_rows(metadata)),
        (f"Candidate v{version} against {champion_name}",
         ["metric", f"candidate v{version}", champion_name, "change"], comparison),
        ("Per class (test split)",
         ["class", "support", "precision", "recall", "F1", "champion recall", "champion F1"], per_class),
        ("Gate checks", ["result", "check", "metric", "observed", "threshold"], checks),
    ]


def _title(version: int, verdict: Verdict) -> str:
    return f"Model version {version}: gate {verdict.outcome}"


def gallery_sections(gallery: dict | None) -> list[dict]:
    """Each part of the gallery (misclassified, correctly classified) as its title, a note saying what it shows, the
    side of its thumbnails' box, and its examples: the thumbnail's file name (None, and what is missing, when the lake
    no longer held the image) and the lines under it. Empty for a version evaluated before reports had a gallery."""
    if not gallery:
        return []

    def example(row: dict, lines: list[str]) -> dict:
        probability = [] if row["probability"] is None else [f"p = {row['probability']:.2f}"]
        missing = None if row["thumbnail"] else "no picture: the lake no longer holds the image"
        return {"thumbnail": row["thumbnail"], "missing": missing, "lines": [*lines, *probability]}

    shown, total = len(gallery["misclassified"]), gallery["misclassified_total"]
    wrong = ("None: every test image was classified correctly." if total == 0 else
             f"All {total}, the most confident mistakes first." if shown == total else
             f"The {shown} most confident of {total} mistakes; the confusion matrix counts them all.")
    probabilities = "" if gallery["probabilities"] else " This classifier gives no probabilities."
    classes, tested = gallery["correct_classes"], gallery["classes_tested"]
    side = gallery["thumbnail_side"]  # each picture's box: every caption starts at the same height
    which = "" if classes == tested else f", for the {classes} classes with the lowest F1 (of {tested})"
    return [
        {"title": f"Misclassified test images ({total})", "note": wrong + probabilities, "side": side,
         "examples": [example(row, [f"true: {row['label']}", f"predicted: {row['predicted']}"])
                      for row in gallery["misclassified"]]},
        {"title": "Correctly classified test images",
         "note": f"Up to {gallery['correct_each']} per class, the most confident first{which}.{probabilities}",
         "side": side,
         "examples": [example(row, [row["label"]]) for row in gallery["correct"]]},
    ]


def _row(cells: list[str]) -> str:
    """A Markdown table row. Labels are object-key folders and may hold `|` or a line break, which would end the
    cell or the row: the one is escaped, the other becomes a space."""
    return "| " + " | ".join(" ".join(cell.replace("|", "\\|").splitlines()) for cell in cells) + " |"


def markdown(metadata: dict, candidate: dict, champion: dict | None, verdict: Verdict, gallery: dict | None = None,
             pictures: tuple[str, ...] = ()) -> str:
    lines = [f"# {_title(metadata['version'], verdict)}", ""]
    lines += [f"- {line}" for line in explain(verdict)] + [""]
    for title, header, rows in sections(metadata, candidate, champion, verdict):
        lines += [f"## {title}", "", _row(header), "|" + "---|" * len(header)]
        lines += [_row(row) for row in rows] + [""]
    lines += [f"## {charts.TITLES[name]}\n\n![{charts.TITLES[name]}]({name})\n" for name in pictures]
    for part in gallery_sections(gallery):
        lines += [f"## {part['title']}", "", part["note"], "", "| picture | example |", "|---|---|"]
        lines += [_row([f"![]({example['thumbnail']})" if example["thumbnail"] else "–", "; ".join(example["lines"])])
                  for example in part["examples"]] + [""]
    return "\n".join(lines)


STYLE = ("body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 8px;"
         "text-align:right;overflow-wrap:anywhere}td:first-child,th:first-child{text-align:left}"
         ".scroll{max-height:30em;overflow-y:auto}.gallery{display:flex;flex-wrap:wrap;gap:10px}"
         "figure{margin:0;width:120px;font-size:12px;overflow-wrap:anywhere}"
         "figure img{display:block;object-fit:contain}")


def _table(header: list[str], rows: list[list[str]]) -> str:
    escape = html.escape
    body = "\n".join([f"<table><tr>{''.join(f'<th>{escape(cell)}</th>' for cell in header)}</tr>",
                      *("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows),
                      "</table>"])
    if len(rows) <= OPEN_ROWS:
        return body
    return f"<details><summary>{len(rows)} rows</summary><div class='scroll'>{body}</div></details>"


def _figure(example: dict, side: int) -> str:
    caption = "<br>".join(html.escape(line) for line in example["lines"])
    alt = html.escape(", ".join(example["lines"]), quote=True)
    source = html.escape(example["thumbnail"] or "", quote=True)
    picture = (f"<img src='{source}' width='{side}' height='{side}' alt='{alt}'>" if example["thumbnail"]
               else f"<span>{html.escape(example['missing'])}</span>")
    return f"<figure>{picture}<figcaption>{caption}</figcaption></figure>"


def html_page(metadata: dict, candidate: dict, champion: dict | None, verdict: Verdict, gallery: dict | None = None,
              pictures: tuple[str, ...] = ()) -> str:
    escape = html.escape
    version = metadata["version"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(_title(version, verdict))}</title>",
             f"<style>{STYLE}</style></head><body>", f"<h1>{escape(_title(version, verdict))}</h1><ul>"]
    parts += [f"<li>{escape(line)}</li>" for line in explain(verdict)] + ["</ul>"]
    for title, header, rows in sections(metadata, candidate, champion, verdict):
        parts += [f"<h2>{escape(title)}</h2>", _table(header, rows)]
    for name in pictures:
        parts.append(f"<h2>{escape(charts.TITLES[name])}</h2><img src='{name}' alt='{escape(charts.TITLES[name])}'>")
    for part in gallery_sections(gallery):
        parts += [f"<h2>{escape(part['title'])}</h2><p>{escape(part['note'])}</p><div class='gallery'>",
                  *(_figure(example, part["side"]) for example in part["examples"]), "</div>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def files(metadata: dict, candidate: dict, champion: dict | None, verdict: Verdict,
          gallery: dict | None = None) -> dict[str, bytes]:
    """Every file of the report by name: report.md, report.html and the pictures they show (the gallery's thumbnails
    are imagepipe.gallery's)."""
    pictures = charts.pictures(metadata["version"], candidate, champion)
    names = tuple(pictures)
    return {"report.md": markdown(metadata, candidate, champion, verdict, gallery, names).encode(),
            "report.html": html_page(metadata, candidate, champion, verdict, gallery, names).encode(), **pictures}
