import pytest

from imagepipe.classifiers import (
    ModelSpec,
    check_transforms_fit,
    hyperparameter_grid,
    model_spec,
    output_dimension,
    parse_feature_transforms,
)
from imagepipe.errors import InputError


def test_no_hyperparameters_give_one_point_of_defaults():
    assert hyperparameter_grid("logistic_regression", {}) == [
        {"reg_param": 0.01, "elastic_net_param": 0.0, "max_iter": 100}]


def test_lists_are_grid_axes_and_scalars_fixed_values():
    grid = hyperparameter_grid("random_forest", {"num_trees": [20, 50], "max_depth": [4, 8], })

    assert grid == [
        {"num_trees": 20, "max_depth": 4}, {"num_trees": 20, "max_depth": 8},
        {"num_trees": 50, "max_depth": 4}, {"num_trees": 50, "max_depth": 8},
    ]


def test_hidden_layers_is_one_value_as_a_list_and_an_axis_as_a_list_of_lists():
    assert [point["hidden_layers"] for point in hyperparameter_grid("mlp", {"hidden_layers": [64, 32]})] == [[64, 32]]
    assert [point["hidden_layers"] for point in hyperparameter_grid("mlp", {"hidden_layers": [[64], [128, 32]]})] == [
        [64], [128, 32]]


def test_integers_given_as_whole_floats_are_accepted():
    assert hyperparameter_grid("linear_svc", {"max_iter": 50.0})[0]["max_iter"] == 50


# Each value's own bounds are its JSON Schema's (tests/dags/test_params.py); these are the rules across values.
@pytest.mark.parametrize(
    ("classifier", "hyperparameters", "message"),
    [
        ("logistic_regression", {"num_trees": 5}, "hyperparameter num_trees does not apply to logistic_regression; "
                                                 "it takes elastic_net_param, max_iter, reg_param"),
        ("mlp", {"hidden_layers": [64, [128]]}, "hidden_layers=[64, [128]] of mlp mixes widths and lists of widths; "
                                                "give [256, 64] for one network or [[128], [256, 64]] for a grid"),
        ("gradient_boosting", {},
         "classifier 'gradient_boosting' is unknown; use one of logistic_regression, linear_svc"),
    ],
)
def test_bad_hyperparameters_are_refused_in_one_line(classifier, hyperparameters, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")) as raised:
        hyperparameter_grid(classifier, hyperparameters)
    assert "\n" not in str(raised.value)


def test_feature_transforms_parse_in_order():
    assert parse_feature_transforms(["standard_scaler", " pca:64", "normalizer"]) == [
        ("standard_scaler", None), ("pca", 64), ("normalizer", None)]


@pytest.mark.parametrize(
    ("item", "message"),
    [("whiten", "feature transform 'whiten' is unknown; use standard_scaler, normalizer or pca:K"),
     ("pca", "needs a positive component count"), ("pca:0", "needs a positive component count"),
     ("pca:-3", "needs a positive component count"), ("normalizer:2", "takes no argument; write normalizer")],
)
def test_bad_feature_transforms_are_refused(item, message):
    with pytest.raises(InputError, match=message):
        parse_feature_transforms([item])


def test_pca_wider_than_the_features_is_refused_naming_the_dimension():
    spec = model_spec("logistic_regression", {}, ["pca:600"], "none", 3)

    with pytest.raises(InputError, match="pca:600 asks for more components than the 512 features; use k <= 512"):
        check_transforms_fit(spec, 512)
    check_transforms_fit(spec, 2048)


def test_the_classifier_sees_the_last_pca_width():
    assert output_dimension(ModelSpec(transforms=[("pca", 64), ("normalizer", None)]), 512) == 64
    assert output_dimension(ModelSpec(), 512) == 512


def test_class_weights_are_refused_where_mllib_cannot_apply_them():
    with pytest.raises(InputError, match="mlp cannot weight classes in MLlib"):
        model_spec("mlp", {}, [], "balanced", 3)
    assert model_spec("random_forest", {}, [], "balanced", 3).class_weights == "balanced"


def test_spec_records_itself_for_the_model_metadata():
    spec = model_spec("linear_svc", {"reg_param": [0.1, 1.0]}, ["pca:8"], "none", 4)

    assert spec.to_json() == {
        "classifier": "linear_svc", "grid": [{"reg_param": 0.1, "max_iter": 100}, {"reg_param": 1.0, "max_iter": 100}],
        "feature_transforms": ["pca:8"], "fitted_transforms": ["pca:8"], "class_weights": "none", "selection_folds": 4,
        "seed": 42,
    }


@pytest.mark.parametrize(
    ("classifier", "transforms", "fitted"),
    [
        ("logistic_regression", [], ["center"]),
        ("logistic_regression", ["normalizer"], ["normalizer", "center"]),  # a Normalizer keeps the zeros
        ("logistic_regression", ["standard_scaler"], ["standard_scaler"]),  # already centred
        ("logistic_regression", ["pca:8", "normalizer"], ["pca:8", "normalizer"]),  # projections are dense
        ("mlp", [], ["standard_scaler"]),
        ("mlp", ["pca:8"], ["pca:8", "standard_scaler"]),
        ("random_forest", [], []),
        ("linear_svc", [], []),
    ],
)
def test_the_model_holds_the_transforms_its_classifier_needs_after_the_asked_ones(classifier, transforms, fitted):
    spec = model_spec(classifier, {}, transforms, "none", 3)

    assert spec.to_json()["feature_transforms"] == transforms
    assert spec.to_json()["fitted_transforms"] == fitted
