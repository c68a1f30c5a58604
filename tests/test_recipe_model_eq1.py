"""The paper's AU loss (Eq. 1) and class weights, against references written here: a numpy Eq. 1 and weights counted
by hand. Eq. 1 weighs both BCE terms of AU j by W_j = N_max / N_j (the authors' `BCEWithLogitsLoss(weight=W)`);
before issue 10 the package weighted only the positive term by negatives / positives."""

import numpy as np
import pytest
import torch

from modeling_abaw import FaceMAEConfig, FaceMAEForAffect
from modeling_abaw.data.splits import au_class_weights, expr_class_weights, inverse_frequency_weights
from modeling_abaw.tasks import AU, EXPR


def numpy_eq1(logits, labels, class_weight, pos_weight=None):
    """mean over the labelled (frame, AU) elements of W_j * BCE_j; `pos_weight` P_j multiplies the positive term."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, np.float64)
    pos_weight = np.ones(labels.shape[-1]) if pos_weight is None else np.asarray(pos_weight, np.float64)
    log_p = -np.log1p(np.exp(-logits))  # log sigmoid(x)
    log_not_p = -logits + log_p  # log (1 - sigmoid(x))
    bce = -(pos_weight * labels * log_p + (1 - labels) * log_not_p)
    labelled = labels != -1
    return (np.asarray(class_weight, np.float64) * bce)[labelled].mean()


def au_batch():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (5, 12)).astype(np.float32)
    labels[0, :4] = -1  # some AUs of a frame unlabelled
    labels[3] = -1  # a frame with no AU label
    labels[:, 11] = [-1, 1, 0, -1, 1]
    return torch.tensor(labels)


def test_au_loss_of_the_model_is_eq1(tiny_face_mae_kwargs):
    torch.manual_seed(0)
    class_weight = [float(w) for w in np.linspace(0.5, 6.0, 12)]
    model = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs, tasks=["au"], au_class_weight=class_weight))
    labels = au_batch()
    outputs = model(torch.randn(5, 3, 32, 32), au_labels=labels)
    # Logits of order 1 make every term count (new heads start near zero).
    logits = outputs.au_logits.detach().numpy()
    assert outputs.au_loss.item() == pytest.approx(numpy_eq1(logits, labels.numpy(), class_weight), rel=1e-6)
    # The default (class weights and positive weights all ones) is the plain masked BCE.
    model.config.au_class_weight = [1.0] * 12
    plain = model(torch.randn(5, 3, 32, 32), au_labels=labels)
    assert plain.au_loss.item() == pytest.approx(numpy_eq1(plain.au_logits.detach(), labels, np.ones(12)), rel=1e-6)


def test_positive_weights_are_an_option_on_top_of_eq1(tiny_face_mae_kwargs):
    torch.manual_seed(0)
    class_weight, pos_weight = [float(w) for w in np.linspace(1, 3, 12)], [float(w) for w in np.linspace(4, 0.5, 12)]
    config = FaceMAEConfig(**tiny_face_mae_kwargs, tasks=["au"], au_class_weight=class_weight, au_pos_weight=pos_weight)
    model = FaceMAEForAffect(config)
    labels = au_batch()
    outputs = model(torch.randn(5, 3, 32, 32), au_labels=labels)
    expected = numpy_eq1(outputs.au_logits.detach(), labels, class_weight, pos_weight)
    assert outputs.au_loss.item() == pytest.approx(expected, rel=1e-6)


def test_registry_names_the_config_fields_of_the_weights():
    assert (AU.class_weight_key, AU.positive_weight_key) == ("au_class_weight", "au_pos_weight")
    assert (EXPR.class_weight_key, EXPR.positive_weight_key) == ("expr_class_weight", None)
    config = FaceMAEConfig()
    assert config.au_class_weight == [1.0] * 12 and config.au_pos_weight == [1.0] * 12
    with pytest.raises(ValueError, match="au_class_weight needs 12"):
        FaceMAEConfig(au_class_weight=[1.0, 2.0])


def test_au_class_weights_are_n_max_over_n_j():
    # Positive frames per AU, counted by hand over 8 frames: markers (-1) are not positives.
    labels = np.zeros((8, 12))
    labels[:8, 0] = 1  # AU1: 8 positives (the most frequent: weight 1)
    labels[:4, 1] = 1  # AU2: 4 -> 8/4
    labels[:2, 2] = 1  # AU4: 2 -> 8/2
    labels[2:, 2] = -1
    labels[:1, 3:11] = 1  # AU6 ... AU25: 1 -> 8/1
    labels[:, 11] = -1  # AU26: never labelled present -> 0
    labels[5, 4] = -1
    expected = [8 / 8, 8 / 4, 8 / 2] + [8 / 1] * 8 + [0]
    np.testing.assert_allclose(au_class_weights(labels), expected, rtol=1e-6)
    np.testing.assert_allclose(au_class_weights(labels.reshape(2, 4, 12)), expected, rtol=1e-6)  # clips


def test_expr_class_weights_are_n_max_over_n_c():
    labels = np.array([0] * 6 + [1] * 3 + [4] * 2 + [7] * 1 + [-1] * 5)
    expected = np.zeros(8)
    expected[[0, 1, 4, 7]] = [6 / 6, 6 / 3, 6 / 2, 6 / 1]  # classes 2, 3, 5, 6 absent: 0
    np.testing.assert_allclose(expr_class_weights(labels), expected, rtol=1e-6)
    assert (expr_class_weights(np.full(4, -1)) == 0).all()


def test_one_rule_for_both_tasks():
    np.testing.assert_allclose(inverse_frequency_weights([10, 5, 0, 40]), [4, 8, 0, 1], rtol=1e-6)
    assert (inverse_frequency_weights([0, 0]) == 0).all()
