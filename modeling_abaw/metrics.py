"""The official ABAW challenge metrics, as plain numpy functions.

- AU detection: mean over the 12 AUs of the binary F1 of thresholded probabilities.
- Expression recognition: unweighted (macro) mean over the 8 classes of the per-class F1.
- Valence/arousal: mean of the concordance correlation coefficients (CCC) of valence and of arousal.
- Multi-task: the sum of the scores of the tasks evaluated (ABAW's P = P_VA + P_EXPR + P_AU).

`compute_abaw_metrics` returns one flat dict of floats, ready to log:

    au_f1      au_f1/<AU>              e.g. au_f1/AU12
    expr_f1    expr_f1/<expression>    e.g. expr_f1/Happiness
    va_ccc     va_ccc/<dimension>      va_ccc/valence, va_ccc/arousal
    score      sum of the task scores present (0.0 if none is)

Defined behaviour at the edges, so no metric is ever NaN:

- Labels equal to the task's "no label" marker (tasks.py) are dropped per element: per AU column, per expression
  frame, per valence/arousal dimension.
- A task with no valid label at all is not scored: its keys are absent and it adds nothing to `score`. A 0.0 would
  read as a useless model and a NaN would poison averages and best-checkpoint comparisons.
- Within a scored task every class counts in the mean (the official denominators 12, 8 and 2). A ratio 0/0 counts as
  0.0, as in scikit-learn's `zero_division=0`: the F1 of a class never labelled and never predicted, and the CCC of two
  series with a zero denominator (both constant and equal, or no valid frame), are 0.0. Agreeing on a constant is no
  evidence of tracking the signal, so it earns no credit.
"""

from collections.abc import Iterable, Mapping

import numpy as np

from .tasks import TASK_NAMES, TASKS, AffectTask, get_task, validate_tasks

# Name of each task's challenge metric, the prefix of its keys in `compute_abaw_metrics`.
METRIC_KEYS: dict[str, str] = {name: task.metric_key for name, task in TASKS.items()}


def f1_from_counts(true_positives, false_positives, false_negatives) -> np.ndarray:
    """Per-class F1 = 2TP / (2TP + FP + FN), with 0/0 -> 0.0 (scikit-learn's zero_division=0)."""
    denominator = 2 * true_positives + false_positives + false_negatives
    return np.divide(2 * true_positives, denominator, out=np.zeros(denominator.shape), where=denominator > 0)


def _check_shape(array: np.ndarray, shape: tuple, what: str) -> None:
    if array.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {array.shape}.")


def _check_values(values: np.ndarray, allowed: Iterable, what: str) -> None:
    bad = ~np.isin(values, list(allowed))
    if bad.any():
        raise ValueError(f"{what} must be in {list(allowed)}, found {values[bad][0].item()!r}.")


def _as_predictions(predictions, task: AffectTask) -> np.ndarray:
    predictions = np.asarray(predictions)
    if not np.all(np.isfinite(predictions)):
        raise ValueError(f"{task.name} predictions contain NaN or infinite values.")
    return predictions


def _check_labels(labels, task: AffectTask) -> np.ndarray:
    """`labels` as an array of the task's label shape whose labelled entries hold valid values."""
    labels = np.asarray(labels)
    what = f"{task.name.upper()} labels"
    _check_shape(labels, task.label_shape(len(labels)), what)
    lowest, highest, integral = task.valid_label_values
    if integral:
        _check_values(labels[task.is_labelled(labels)], range(int(lowest), int(highest) + 1), what)
    return labels


def multilabel_counts(task: AffectTask, probabilities, labels, threshold: float | None = None) -> np.ndarray:
    """(3, num_outputs): true positives, false positives and false negatives of each output of a multilabel task
    (AU), on its labelled entries; `multilabel_f1_per_class` documents the arguments."""
    probabilities, labels = _as_predictions(probabilities, task), _check_labels(labels, task)
    _check_shape(probabilities, labels.shape, f"{task.name.upper()} predictions")
    labelled = task.is_labelled(labels)
    threshold = task.threshold if threshold is None else threshold
    predicted = (probabilities >= threshold) & labelled
    present = labels == 1
    return np.stack([(predicted & present).sum(0), (predicted & ~present).sum(0), (~predicted & present).sum(0)])


def multilabel_f1_per_class(task: AffectTask, probabilities, labels, threshold: float | None = None) -> np.ndarray:
    """Binary F1 of each output of a multilabel task (AU: shape (12,), in `AU.labels` order).

    Args:
        probabilities: (N, num_outputs) probabilities (or 0/1 decisions); an output is predicted present when
            >= `threshold` (default: the task's, the challenge's 0.5).
        labels: (N, num_outputs) with 0, 1 or the "no label" marker, which drops that output of that frame only.
    """
    return f1_from_counts(*multilabel_counts(task, probabilities, labels, threshold))


def confusion_matrix(task: AffectTask, predictions, labels) -> np.ndarray:
    """(num_classes, num_classes) counts of the labelled frames of a multiclass task (EXPR), rows = true class,
    columns = predicted class, in `task.labels` order; `multiclass_f1_per_class` documents the arguments."""
    predictions, labels = _as_predictions(predictions, task), _check_labels(labels, task)
    num_classes = task.num_outputs
    if predictions.ndim == 2:
        _check_shape(predictions, (len(labels), num_classes), f"{task.name.upper()} probabilities")
        predictions = task.decisions(predictions)
    _check_shape(predictions, labels.shape, f"{task.name.upper()} predictions")
    _check_values(predictions, range(num_classes), f"{task.name.upper()} predictions")
    labelled = task.is_labelled(labels)
    return np.bincount(
        labels[labelled].astype(np.int64) * num_classes + predictions[labelled].astype(np.int64),
        minlength=num_classes**2,
    ).reshape(num_classes, num_classes)


def multiclass_f1_per_class(task: AffectTask, predictions, labels) -> np.ndarray:
    """F1 of each class of a multiclass task (EXPR: shape (8,), in `EXPR.labels` order).

    Equals scikit-learn's `f1_score(labels, predictions, labels=range(8), average=None, zero_division=0)` on the
    labelled frames; its mean is the challenge's macro F1.

    Args:
        predictions: (N, num_classes) class probabilities or logits (the task's decision, the argmax, is taken),
            or (N,) class indices.
        labels: (N,) class indices, or the "no label" marker for frames without a label.
    """
    return f1_from_counts(*classification_counts(task, predictions, labels))


def classification_counts(task: AffectTask, predictions, labels) -> np.ndarray:
    """(3, num_outputs): true positives, false positives and false negatives per output of a classification task
    (AU or EXPR), whose F1 is `f1_from_counts(*counts)`. Counts of disjoint sets of frames add up, so the counts of
    any union of videos (a bootstrap resample) are sums of per-video counts."""
    if not task.is_multiclass:
        return multilabel_counts(task, predictions, labels)
    confusion = confusion_matrix(task, predictions, labels)
    true_positives = np.diag(confusion)
    return np.stack([true_positives, confusion.sum(0) - true_positives, confusion.sum(1) - true_positives])


def _mean_and_deviations(values: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean and deviations from it, computed on the values shifted by their first one: a constant series then has
    deviations of exactly 0 (a plain mean can be off by an ulp), so constant predictions get a CCC of exactly 0.0."""
    shifted = values - values[0]
    shift_mean = shifted.mean()
    return values[0] + shift_mean, shifted - shift_mean


def concordance_correlation_coefficient(predictions, labels) -> float:
    """Lin's CCC = 2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2), with population moments.

    Computed in float64 on centred values and clipped to [-1, 1] against rounding. A zero denominator (both series
    constant and equal, or empty) gives 0.0, never NaN.
    """
    x, y = np.asarray(predictions, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    _check_shape(x, y.shape, "CCC predictions")
    if x.size == 0:
        return 0.0
    (x_mean, x_centred), (y_mean, y_centred) = _mean_and_deviations(x), _mean_and_deviations(y)
    covariance = np.mean(x_centred * y_centred)
    denominator = np.mean(x_centred**2) + np.mean(y_centred**2) + (x_mean - y_mean) ** 2
    return float(np.clip(2 * covariance / denominator, -1.0, 1.0)) if denominator > 0 else 0.0


def regression_ccc_per_class(task: AffectTask, predictions, labels) -> np.ndarray:
    """CCC of each dimension of a regression task (VA: valence, arousal); the "no label" marker drops that dimension
    of that frame only."""
    predictions, labels = _as_predictions(predictions, task), _check_labels(labels, task)
    _check_shape(predictions, labels.shape, f"{task.name.upper()} predictions")
    labelled = task.is_labelled(labels)
    return np.array(
        [
            concordance_correlation_coefficient(predictions[labelled[:, d], d], labels[labelled[:, d], d])
            for d in range(task.num_outputs)
        ]
    )


def per_class_scores(task: AffectTask, predictions, labels) -> np.ndarray:
    """The challenge metric of `task` per output (F1 per AU or per expression, CCC per VA dimension); its mean is
    the task's score.

    The one dispatch on the task kind outside the registry: the metrics need numpy, which tasks.py cannot import.
    """
    if task.is_regression:
        return regression_ccc_per_class(task, predictions, labels)
    if task.is_multiclass:
        return multiclass_f1_per_class(task, predictions, labels)
    return multilabel_f1_per_class(task, predictions, labels)


def _resolve_tasks(predictions: Mapping, labels: Mapping, tasks) -> list[str]:
    """The tasks to score: those given (which both dicts must hold), else every task present in both."""
    if tasks is None:
        tasks = [name for name in TASK_NAMES if name in predictions and name in labels]
        if not tasks:
            raise ValueError(
                f"No ABAW task is present in both predictions ({sorted(predictions)}) and labels ({sorted(labels)})."
            )
        return tasks
    tasks = validate_tasks(tasks)
    for name in tasks:
        for what, source in (("labels", labels), ("predictions", predictions)):
            if name not in source:
                raise ValueError(f"Task {name!r} is requested but missing from the {what}.")
    return tasks


def compute_abaw_metrics(predictions: Mapping, labels: Mapping, tasks=None) -> dict[str, float]:
    """Challenge metrics of every task, their per-class values and the multi-task score.

    Args:
        predictions: task -> array: "au" (N, 12) probabilities, "expr" (N, 8) probabilities or (N,) class indices,
            "va" (N, 2) values. Other keys are ignored.
        labels: task -> array in the official format: "au" (N, 12), "expr" (N,), "va" (N, 2), with "no label" markers.
        tasks: the tasks to score; default every task present in both dicts.

    Returns:
        Flat floats keyed as described in the module docstring; a task without any valid label is left out.
    """
    metrics: dict[str, float] = {}
    score = 0.0
    for name in _resolve_tasks(predictions, labels, tasks):
        task = get_task(name)
        per_class = per_class_scores(task, predictions[name], labels[name])
        if not np.any(task.is_labelled(np.asarray(labels[name]))):
            continue
        metrics[task.metric_key] = float(per_class.mean())
        metrics.update({f"{task.metric_key}/{label}": float(value) for label, value in zip(task.labels, per_class)})
        score += metrics[task.metric_key]
    metrics["score"] = score
    return metrics


def chance_level_predictions(labels: Mapping, tasks=None, seed: int = 0) -> dict[str, np.ndarray]:
    """Label-blind random predictions for `labels`, the "chance level" of a report (`chance_level_metrics`):

    - Multilabel (AU): each output is predicted present at random, with probability equal to its positive rate in
      `labels` (its expected F1 is about that rate). Predicting every AU present would score higher, but that is a
      tuned decision rule, not chance.
    - Multiclass (EXPR): a class drawn uniformly at random for each frame, as one-hot probabilities.
    - Regression (VA): the constant mean of the valid labels, whose CCC is 0 by definition.

    Draws come from `numpy.random.default_rng(seed)`, so the predictions are reproducible.
    """
    tasks = _resolve_tasks(labels, labels, tasks)
    rng = np.random.default_rng(seed)
    predictions = {}
    for name in tasks:
        task, task_labels = get_task(name), np.asarray(labels[name])
        # Chance levels are kind-specific draws (numpy), the same exception to the registry rule as the metrics.
        if task.is_multiclass:
            predictions[name] = np.eye(task.num_outputs)[rng.integers(0, task.num_outputs, size=len(task_labels))]
            continue
        # Per-column mean of the valid labels: the AU positive rate, or the VA mean (0 for a column without labels).
        labelled = task.is_labelled(task_labels)
        column_mean = np.where(labelled, task_labels, 0).sum(0) / np.maximum(labelled.sum(0), 1)
        if task.is_regression:
            predictions[name] = np.broadcast_to(column_mean, task_labels.shape)
        else:
            predictions[name] = (rng.random(task_labels.shape) < column_mean).astype(np.float64)
    return predictions


def chance_level_metrics(labels: Mapping, tasks=None, seed: int = 0) -> dict[str, float]:
    """`compute_abaw_metrics` of `chance_level_predictions`: the chance level of a report."""
    tasks = _resolve_tasks(labels, labels, tasks)
    return compute_abaw_metrics(chance_level_predictions(labels, tasks, seed), labels, tasks)
