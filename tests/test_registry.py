"""The task registry's behaviour: the same methods serve numpy arrays (metrics, submission) and torch tensors
(losses, pipeline)."""

import numpy as np
import pytest
import torch

from modeling_abaw.tasks import AU, EXPR, TASK_NAMES, TASKS, VA, get_task, task_label_names, validate_tasks


def test_names_keys_and_shapes():
    assert TASK_NAMES == ("au", "expr", "va")
    assert [task.output_key for task in TASKS.values()] == ["au_logits", "expr_logits", "va"]
    assert [task.label_key for task in TASKS.values()] == ["au_labels", "expr_labels", "va_labels"]
    assert [task.loss_key for task in TASKS.values()] == ["au_loss", "expr_loss", "va_loss"]
    assert [task.metric_key for task in TASKS.values()] == ["au_f1", "expr_f1", "va_ccc"]
    assert [task.class_weight_key for task in TASKS.values()] == ["au_class_weight", "expr_class_weight", None]
    assert [task.positive_weight_key for task in TASKS.values()] == ["au_pos_weight", None, None]
    assert [task.num_outputs for task in TASKS.values()] == [12, 8, 2]
    assert [task.num_value_columns for task in TASKS.values()] == [12, 1, 2]
    assert [task.label_shape(5) for task in TASKS.values()] == [(5, 12), (5,), (5, 2)]
    assert [task.label_dtype for task in TASKS.values()] == ["float32", "int64", "float32"]
    assert [task.prediction_range for task in TASKS.values()] == [(0.0, 1.0), (0.0, 1.0), (-1.0, 1.0)]
    assert task_label_names(["va", "au"]) == [*AU.labels, "valence", "arousal"]


def test_unknown_and_empty_task_lists_are_errors():
    with pytest.raises(ValueError, match="Unknown task 'pose'"):
        get_task("pose")
    with pytest.raises(ValueError, match="At least one task"):
        validate_tasks([])
    assert validate_tasks("va") == ["va"] and validate_tasks(["va", "expr"]) == ["expr", "va"]


@pytest.mark.parametrize("backend", [np.asarray, torch.as_tensor])
def test_is_labelled_per_element(backend):
    au = backend([[1.0, -1.0, 0.0] + [0.0] * 9])
    assert np.asarray(AU.is_labelled(au)).tolist() == [[True, False, True] + [True] * 9]
    assert np.asarray(EXPR.is_labelled(backend([3, -1, 0]))).tolist() == [True, False, True]
    assert np.asarray(VA.is_labelled(backend([[-5.0, 0.2], [-1.0, -5.0]]))).tolist() == [[False, True], [True, False]]


def test_predictions_of_model_outputs():
    logits = torch.tensor([[0.0, 2.0, -2.0]])
    torch.testing.assert_close(AU.predictions(logits), logits.sigmoid())
    torch.testing.assert_close(EXPR.predictions(logits), logits.softmax(-1))
    assert torch.equal(VA.predictions(logits), logits)
    assert torch.equal(VA.head_activation(logits), logits.tanh()) and torch.equal(AU.head_activation(logits), logits)


@pytest.mark.parametrize("backend", [np.asarray, torch.as_tensor])
def test_decisions_on_numpy_and_torch(backend):
    probabilities = backend([[0.5, 0.49, 0.9], [0.1, 0.7, 0.2]])
    assert np.asarray(AU.decisions(probabilities)).tolist() == [[1, 0, 1], [0, 1, 0]]
    assert np.asarray(EXPR.decisions(probabilities)).tolist() == [2, 1]
    values = backend([[0.25, -0.5]])
    assert np.asarray(VA.decisions(values)).tolist() == [[0.25, -0.5]]


def test_valid_label_values():
    assert AU.valid_label_values == (0, 1, True)
    assert EXPR.valid_label_values == (0, 7, True)
    assert VA.valid_label_values == (-1.0, 1.0, False)
