from imagepipe import charts

CONFUSION = {"labels": ["beach", "forest"], "counts": [[8, 2], [0, 10]]}
HOSTILE = "<script>alert(1)</script>"


def test_confusion_matrix_names_true_and_predicted_labels_on_its_axes():
    figure = charts.confusion_matrix_figure(4, CONFUSION)
    axes = figure.axes[0]

    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["beach", "forest"]
    assert [tick.get_text() for tick in axes.get_yticklabels()] == ["beach", "forest"]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("predicted label", "true label")
    assert sorted(text.get_text() for text in axes.texts) == ["0", "10", "2", "8"]


def test_confusion_matrix_of_many_classes_is_a_heat_map_without_cell_counts_or_class_names():
    labels = [f"class_{index}" for index in range(120)]
    counts = [[3 if row == column else 0 for column in range(120)] for row in range(120)]
    figure = charts.confusion_matrix_figure(4, {"labels": labels, "counts": counts})
    axes = figure.axes[0]

    assert len(axes.texts) == len(axes.get_xticklabels()) == len(axes.get_yticklabels()) == 0
    assert axes.get_xlabel() == "predicted label (120 classes, alphabetical)"
    assert max(figure.get_size_inches()) == charts.LARGEST_INCHES


def test_per_class_chart_shows_the_classes_with_the_lowest_f1_first_and_says_how_many_it_left_out():
    per_class = {f"class_{index:02d}": {"precision": 0.9, "recall": 0.8, "f1": (index + 1) / 100, "support": 4}
                 for index in range(45)}
    per_class["never_tested"] = {"precision": None, "recall": None, "f1": None, "support": 0}
    per_class["price_$5_to_$6"] = {"precision": 0.1, "recall": 0.1, "f1": 0.001, "support": 2}
    figure = charts.per_class_figure(3, per_class)
    assert charts.png(figure).startswith(b"\x89PNG")  # a `$` in a class name is not read as mathematics
    axes = figure.axes[0]

    names = [tick.get_text() for tick in axes.get_yticklabels()]
    assert names[:3] == [r"price_\$5_to_\$6", "class_00", "class_01"]
    assert len(names) == charts.PER_CLASS_SHOWN
    assert axes.get_title().endswith(f"the {charts.PER_CLASS_SHOWN} of 46 classes with the lowest F1")


def test_a_long_class_name_is_cut_on_the_axes():
    figure = charts.per_class_figure(3, {"x" * 80: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
                                         HOSTILE: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 1}})

    assert [tick.get_text() for tick in figure.axes[0].get_yticklabels()] == [HOSTILE, "x" * 31 + "…"]


def test_the_comparison_is_drawn_only_against_a_champion():
    candidate = {"accuracy": 0.9, "macro_f1": 0.8, "weighted_f1": 0.85, "per_class": {}, "confusion_matrix": CONFUSION}
    champion = {**candidate, "accuracy": 0.7, "version": 2}

    assert list(charts.pictures(3, candidate, None)) == ["per_class.png", "confusion_matrix.png"]
    pictures = charts.pictures(3, candidate, champion)
    assert list(pictures) == ["comparison.png", "per_class.png", "confusion_matrix.png"]
    assert all(data.startswith(b"\x89PNG") for data in pictures.values())
    axes = charts.comparison_figure(3, candidate, champion).axes[0]
    assert [text.get_text() for text in axes.texts] == ["0.900", "0.800", "0.850", "0.700", "0.800", "0.850"]


def test_cjk_and_accented_class_names_are_drawn_as_text_not_empty_boxes():
    import warnings

    labels = ["ünïcödé-标签", "海滩", "夜空"]
    figure = charts.confusion_matrix_figure(4, {"labels": labels, "counts": [[2, 0, 0], [0, 3, 1], [0, 0, 4]]})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts.png(figure)  # matplotlib warns of each glyph no font in its list has

    assert [str(warning.message) for warning in caught if "missing from font" in str(warning.message)] == []
    assert [tick.get_text() for tick in figure.axes[0].get_xticklabels()] == labels
