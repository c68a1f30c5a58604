import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix
from sklearn.metrics import f1_score

from modeling_abaw.metrics import (
    METRIC_KEYS,
    chance_level_metrics,
    classification_counts,
    compute_abaw_metrics,
    concordance_correlation_coefficient,
    confusion_matrix,
    f1_from_counts,
    multiclass_f1_per_class,
    multilabel_f1_per_class,
    per_class_scores,
    regression_ccc_per_class,
)
from modeling_abaw.tasks import AU, EXPR, TASKS, VA


def random_labels(rng, num_frames=300, invalid_rate=0.2):
    """Official-format labels with markers dropped in at random, per element."""
    au = rng.integers(0, 2, size=(num_frames, AU.num_outputs)).astype(float)
    au[rng.random(au.shape) < invalid_rate] = AU.invalid_value
    expr = rng.integers(0, EXPR.num_outputs, size=num_frames)
    expr[rng.random(num_frames) < invalid_rate] = EXPR.invalid_value
    va = rng.uniform(-1, 1, size=(num_frames, 2))
    va[rng.random(va.shape) < invalid_rate] = VA.invalid_value
    return {"au": au, "expr": expr, "va": va}


def random_predictions(rng, num_frames=300):
    expr = rng.random((num_frames, EXPR.num_outputs))
    return {
        "au": rng.random((num_frames, AU.num_outputs)),
        "expr": expr / expr.sum(1, keepdims=True),
        "va": rng.uniform(-1, 1, size=(num_frames, 2)),
    }


def reference_ccc(x, y):
    """CCC written as 2 rho sigma_x sigma_y / (sigma_x^2 + sigma_y^2 + (mu_x - mu_y)^2)."""
    rho = np.corrcoef(x, y)[0, 1]
    return 2 * rho * x.std() * y.std() / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_au_f1_matches_sklearn_per_column_with_markers():
    rng = np.random.default_rng(0)
    labels, predictions = random_labels(rng)["au"], random_predictions(rng)["au"]
    labels[:, 3] = np.where(labels[:, 3] == 1, 0, labels[:, 3])  # an AU never present...
    predictions[:, 3] = 0.1  # ...and never predicted: F1 0/0 -> 0
    for threshold in (0.5, 0.3):
        expected = [
            f1_score(labels[valid, k], predictions[valid, k] >= threshold, zero_division=0)
            for k, valid in enumerate((labels != AU.invalid_value).T)
        ]
        np.testing.assert_allclose(multilabel_f1_per_class(AU, predictions, labels, threshold), expected)
    assert multilabel_f1_per_class(AU, predictions, labels)[3] == 0.0


@pytest.mark.parametrize("as_indices", [False, True])
def test_expr_f1_matches_sklearn_macro(as_indices):
    rng = np.random.default_rng(1)
    labels, predictions = random_labels(rng)["expr"], random_predictions(rng)["expr"]
    # "Other" (7) absent from both the labels and the predictions still counts in the macro mean, as 0.
    labels[labels == 7] = 0
    predictions[:, 7] = 0
    predicted = predictions.argmax(1)
    valid = labels != EXPR.invalid_value
    per_class = multiclass_f1_per_class(EXPR, predicted if as_indices else predictions, labels)
    reference = dict(y_true=labels[valid], y_pred=predicted[valid], labels=range(8), zero_division=0)
    np.testing.assert_allclose(per_class, f1_score(**reference, average=None))
    assert per_class.mean() == pytest.approx(f1_score(**reference, average="macro"))
    assert per_class[7] == 0.0


def test_va_ccc_matches_reference_formula_with_markers():
    rng = np.random.default_rng(2)
    labels = random_labels(rng)["va"]
    noise = rng.normal(0, 0.3, labels.shape)
    predictions = np.clip(np.where(labels == VA.invalid_value, 0, labels) * 0.6 + noise, -1, 1)
    expected = [
        reference_ccc(predictions[valid, d], labels[valid, d]) for d, valid in enumerate((labels != VA.invalid_value).T)
    ]
    np.testing.assert_allclose(regression_ccc_per_class(VA, predictions, labels), expected)


def test_ccc_edge_cases_are_defined():
    x = np.linspace(-1, 1, 50)
    assert concordance_correlation_coefficient(x, x) == pytest.approx(1.0)
    assert concordance_correlation_coefficient(-x, x) == pytest.approx(-1.0)
    assert concordance_correlation_coefficient(np.full(50, 0.3), x) == 0.0  # constant predictions
    assert concordance_correlation_coefficient(np.full(50, 0.3), np.full(50, 0.3)) == 0.0  # 0/0
    assert concordance_correlation_coefficient(np.full(50, 0.3), np.full(50, -0.2)) == 0.0
    assert concordance_correlation_coefficient([], []) == 0.0
    assert concordance_correlation_coefficient([0.5], [0.5]) == 0.0


def test_compute_abaw_metrics_keys_and_multitask_score():
    rng = np.random.default_rng(3)
    labels, predictions = random_labels(rng), random_predictions(rng)
    metrics = compute_abaw_metrics(predictions, labels)
    expected_keys = {"au_f1", "expr_f1", "va_ccc", "score"}
    expected_keys |= {f"au_f1/{name}" for name in AU.labels} | {f"expr_f1/{name}" for name in EXPR.labels}
    expected_keys |= {"va_ccc/valence", "va_ccc/arousal"}
    assert set(metrics) == expected_keys
    assert all(isinstance(value, float) and np.isfinite(value) for value in metrics.values())
    assert metrics["au_f1"] == pytest.approx(multilabel_f1_per_class(AU, predictions["au"], labels["au"]).mean())
    assert (
        metrics["au_f1/AU12"] == multilabel_f1_per_class(AU, predictions["au"], labels["au"])[AU.labels.index("AU12")]
    )
    assert metrics["va_ccc"] == pytest.approx(np.mean([metrics["va_ccc/valence"], metrics["va_ccc/arousal"]]))
    assert metrics["score"] == pytest.approx(metrics["au_f1"] + metrics["expr_f1"] + metrics["va_ccc"])
    only_va = compute_abaw_metrics(predictions, labels, tasks=["va"])
    assert set(only_va) == {"va_ccc", "va_ccc/valence", "va_ccc/arousal", "score"}
    assert only_va["score"] == metrics["va_ccc"]


def test_perfect_predictions_score_three():
    rng = np.random.default_rng(4)
    labels = random_labels(rng)
    predictions = {
        "au": np.where(labels["au"] == 1, 0.9, 0.1),
        "expr": np.where(labels["expr"] == EXPR.invalid_value, 0, labels["expr"]),
        "va": np.where(labels["va"] == VA.invalid_value, 0.0, labels["va"]),
    }
    assert compute_abaw_metrics(predictions, labels)["score"] == pytest.approx(3.0)


def test_task_without_any_valid_label_is_left_out():
    rng = np.random.default_rng(5)
    labels, predictions = random_labels(rng), random_predictions(rng)
    labels["au"][:] = AU.invalid_value
    metrics = compute_abaw_metrics(predictions, labels)
    assert not any(key.startswith("au_f1") for key in metrics)
    assert metrics["score"] == pytest.approx(metrics["expr_f1"] + metrics["va_ccc"])
    labels["expr"][:], labels["va"][:] = EXPR.invalid_value, VA.invalid_value
    assert compute_abaw_metrics(predictions, labels) == {"score": 0.0}


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(6)
    labels, predictions = random_labels(rng, 20), random_predictions(rng, 20)
    with pytest.raises(ValueError, match="AU predictions must have shape"):
        compute_abaw_metrics({"au": predictions["au"][:10]}, labels)
    with pytest.raises(ValueError, match="NaN"):
        compute_abaw_metrics({"va": np.full((20, 2), np.nan)}, labels)
    bad_au = labels["au"].copy()
    bad_au[0, 0] = 2
    with pytest.raises(ValueError, match=r"AU labels must be in \[0, 1\], found 2.0"):
        compute_abaw_metrics(predictions, {"au": bad_au})
    with pytest.raises(ValueError, match="'expr' is requested but missing from the labels"):
        compute_abaw_metrics(predictions, {"au": labels["au"]}, tasks=["expr"])
    with pytest.raises(ValueError, match="No ABAW task"):
        compute_abaw_metrics({"features": 0}, labels)


def test_chance_level_is_reproducible_and_near_its_expectation():
    rng = np.random.default_rng(7)
    labels = random_labels(rng, num_frames=20000)
    labels["au"][:, 0] = np.where(rng.random(20000) < 0.1, 1, 0)  # a rare AU: chance F1 ~ its 10% base rate
    chance = chance_level_metrics(labels, seed=0)
    assert chance == chance_level_metrics(labels, seed=0)
    assert chance != chance_level_metrics(labels, seed=1)
    assert chance["au_f1/AU1"] == pytest.approx(0.1, abs=0.02)
    assert chance["au_f1/AU2"] == pytest.approx(0.5, abs=0.02)
    assert chance["expr_f1"] == pytest.approx(1 / 8, abs=0.02)  # uniform labels, uniform guesses
    assert abs(chance["va_ccc"]) < 1e-12
    assert chance["score"] < 1.0
    expr_keys = {"expr_f1", *(f"expr_f1/{name}" for name in EXPR.labels)}
    assert set(chance_level_metrics(labels, tasks="expr")) == {"score", *expr_keys}


def test_metric_names_and_per_class_scores_come_from_the_registry():
    assert METRIC_KEYS == {name: task.metric_key for name, task in TASKS.items()}
    rng = np.random.default_rng(7)
    labels, predictions = random_labels(rng), random_predictions(rng)
    metrics = compute_abaw_metrics(predictions, labels)
    for name, task in TASKS.items():
        per_class = per_class_scores(task, predictions[name], labels[name])
        assert per_class.shape == (task.num_outputs,)
        assert metrics[task.metric_key] == pytest.approx(per_class.mean())


def test_confusion_matrix_matches_sklearn_on_labelled_frames():
    rng = np.random.default_rng(5)
    labels, predictions = random_labels(rng)["expr"], random_predictions(rng)["expr"]
    labelled = labels != EXPR.invalid_value
    expected = sklearn_confusion_matrix(labels[labelled], predictions.argmax(1)[labelled], labels=range(8))
    np.testing.assert_array_equal(confusion_matrix(EXPR, predictions, labels), expected)


@pytest.mark.parametrize("task", [AU, EXPR], ids=lambda task: task.name)
def test_classification_counts_add_up_over_disjoint_frames(task):
    rng = np.random.default_rng(6)
    labels, predictions = random_labels(rng)[task.name], random_predictions(rng)[task.name]
    halves = [slice(0, 120), slice(120, None)]
    counts = sum(classification_counts(task, predictions[half], labels[half]) for half in halves)
    np.testing.assert_array_equal(counts, classification_counts(task, predictions, labels))
    np.testing.assert_array_equal(f1_from_counts(*counts), per_class_scores(task, predictions, labels))
