"""The evaluation report's pictures, drawn with matplotlib: the confusion matrix as a heat map, precision and recall
per class, and the candidate against the champion; and the Models page's drift of a champion over its last batch
scoring runs.

Each stays readable, and its file small, with a few hundred classes: the matrix's figure has a largest size and drops
its per-cell counts, then its class names, as classes grow; the per-class chart shows the classes with the lowest F1
and says how many it left out.
"""

from __future__ import annotations

import functools
import io

CELL_COUNTS_UP_TO = 20  # classes: above, the matrix's cells are too small to carry their counts
CLASS_NAMES_UP_TO = 60  # classes: above, the matrix's axes are too short to name each class
PER_CLASS_SHOWN = 30  # classes in the per-class chart, the lowest F1 first
LARGEST_INCHES = 16.0  # at 100 dpi: a picture at most 1,600 pixels on a side, whatever the number of classes
LABEL_CHARACTERS = 32  # a longer class name is cut, with an ellipsis, on the charts' axes
COMPARED = ("accuracy", "macro_f1", "weighted_f1")
# The pictures a version may hold, in the order the report shows them, with their headings.
TITLES = {"comparison.png": "Candidate against champion", "per_class.png": "Precision and recall per class",
          "confusion_matrix.png": "Confusion matrix"}


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")  # no display on workers
    from matplotlib.figure import Figure

    matplotlib.rcParams["font.family"] = _font_families()
    return Figure(figsize=(width, height))


@functools.cache
def _font_families() -> list[str]:
    """matplotlib's default font, then each installed sans-serif CJK font (Debian's fonts-noto-cjk): a glyph the first
    lacks is drawn from the next, so labels in Chinese, Japanese or Korean show as text, not empty boxes. Fonts
    installed after matplotlib cached its font list are added from the system's."""
    from matplotlib import font_manager

    def cjk() -> list[str]:
        return sorted({font.name for font in font_manager.fontManager.ttflist
                       if "CJK" in font.name and "Sans" in font.name})

    if not cjk():
        for path in font_manager.findSystemFonts(fontext="otf") + font_manager.findSystemFonts(fontext="ttf"):
            if "CJK" in path:
                font_manager.fontManager.addfont(path)
    return ["DejaVu Sans", *cjk()]


def _shown(label: str) -> str:
    """A class name as an axis shows it: cut when long, and a `$` kept as text (matplotlib reads $...$ as math)."""
    cut = label if len(label) <= LABEL_CHARACTERS else label[:LABEL_CHARACTERS - 1] + "…"
    return cut.replace("$", r"\$")


def confusion_matrix_figure(version: int, confusion: dict):
    """Rows are the true labels, columns the predicted ones, as a heat map of counts (each cell written in it while
    the classes are few)."""
    labels, counts = confusion["labels"], confusion["counts"]
    size = min(max(5.0, 0.5 * len(labels) + 3), LARGEST_INCHES)
    figure = _figure(size, size)
    axes = figure.subplots()
    image = axes.imshow(counts or [[0]], cmap="Blues", interpolation="nearest")
    named = len(labels) <= CLASS_NAMES_UP_TO
    shown = [_shown(label) for label in labels] if named else []
    axes.set_xticks(range(len(labels)) if named else [], shown, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)) if named else [], shown)
    in_order = "" if named else f" ({len(labels)} classes, alphabetical)"
    axes.set_xlabel(f"predicted label{in_order}")
    axes.set_ylabel(f"true label{in_order}")
    axes.set_title(f"Confusion matrix, version {version} (test split)")
    if len(labels) <= CELL_COUNTS_UP_TO:
        peak = max((max(row) for row in counts), default=0)
        for row, values in enumerate(counts):
            for column, count in enumerate(values):
                axes.text(column, row, str(count), ha="center", va="center",
                          color="white" if count > peak / 2 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    return figure


def worst_classes(per_class: dict) -> list[str]:
    """The classes with test images, the lowest F1 first, at most PER_CLASS_SHOWN of them."""
    tested = [label for label, row in per_class.items() if row["support"]]
    return sorted(tested, key=lambda label: (per_class[label]["f1"], label))[:PER_CLASS_SHOWN]


def per_class_figure(version: int, per_class: dict):
    """Precision and recall of each class, as pairs of horizontal bars, the lowest F1 at the top."""
    shown = worst_classes(per_class)
    tested = sum(1 for row in per_class.values() if row["support"])
    figure = _figure(8.0, min(1.6 + 0.32 * len(shown), LARGEST_INCHES))
    axes = figure.subplots()
    positions = range(len(shown))
    for offset, metric, colour in ((-0.2, "precision", "#4c78a8"), (0.2, "recall", "#f58518")):
        axes.barh([position + offset for position in positions], [per_class[label][metric] for label in shown],
                  height=0.4, label=metric, color=colour)
    axes.set_yticks(positions, [_shown(label) for label in shown])
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("on the test split")
    which = f"the {len(shown)} of {tested} classes with the lowest F1" if len(shown) < tested else "by F1, lowest first"
    axes.set_title(f"Precision and recall per class, version {version}\n{which}")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.tight_layout()
    return figure


def comparison_figure(version: int, candidate: dict, champion: dict):
    """The candidate's and the champion's summary metrics side by side, on the same test images."""
    figure = _figure(7.0, 3.2)
    axes = figure.subplots()
    positions = range(len(COMPARED))
    for offset, name, metrics, colour in ((-0.2, f"candidate v{version}", candidate, "#4c78a8"),
                                          (0.2, f"champion v{champion['version']}", champion, "#bab0ac")):
        values = [metrics.get(metric) or 0.0 for metric in COMPARED]
        bars = axes.bar([position + offset for position in positions], values, width=0.4, label=name, color=colour)
        axes.bar_label(bars, labels=[f"{value:.3f}" for value in values], fontsize=8)
    axes.set_xticks(positions, COMPARED)
    axes.set_ylim(0, 1.1)
    axes.set_title(f"Candidate v{version} against champion v{champion['version']} (same test images)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    figure.tight_layout()
    return figure


# The drift checks as the chart names them, with their colours (imagepipe.drift's CHECKS).
DRIFT_LINES = {"class_mix_psi": ("predicted-class mix", "#4c78a8"),
               "top_probability_psi": ("top probability", "#f58518"),
               "feature_psi_max": ("features (largest component)", "#54a24b")}


def drift_figure(model_name: str, runs: list[dict]):
    """Each drift check's PSI over the model's scoring runs (oldest first), its threshold dashed, a run that alarmed
    marked; a run with no verdict (too few images, no reference) leaves a gap."""
    figure = _figure(8.0, 3.2)
    axes = figure.subplots()
    positions = range(len(runs))
    for name, (title, colour) in DRIFT_LINES.items():
        values = [run[name] if run[name] is not None else float("nan") for run in runs]
        axes.plot(positions, values, marker="o", markersize=4, label=title, color=colour)
        thresholds = [run[f"{name}_threshold"] for run in runs if run[f"{name}_threshold"] is not None]
        if thresholds:
            axes.axhline(thresholds[-1], color=colour, linestyle="--", linewidth=0.8)
        alarms = [(position, run[name]) for position, run in zip(positions, runs, strict=True) if run[f"{name}_alarm"]]
        if alarms:
            axes.scatter(*zip(*alarms, strict=True), marker="x", s=60, color="#e45756", zorder=3)
    axes.set_xticks(positions, [run["scored_at"].strftime("%m-%d %H:%M") if run["scored_at"] else "" for run in runs],
                    rotation=45, ha="right", fontsize=7)
    axes.set_ylabel("PSI (dashed: threshold)")
    axes.set_title(f"Drift of {model_name}'s champion in its last {len(runs)} scoring runs (x: alarm)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    figure.tight_layout()
    return figure


def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def pictures(version: int, candidate: dict, champion: dict | None) -> dict[str, bytes]:
    """The version's pictures by file name (the comparison only when there is a champion)."""
    drawn = {"per_class.png": per_class_figure(version, candidate["per_class"]),
             "confusion_matrix.png": confusion_matrix_figure(version, candidate["confusion_matrix"])}
    if champion is not None:
        drawn["comparison.png"] = comparison_figure(version, candidate, champion)
    return {name: png(drawn[name]) for name in TITLES if name in drawn}
