"""Training splits and class weights (modeling_abaw.data.splits): video-level k-fold, and the class weights computed
from label arrays or straight from a frame table."""

import numpy as np
import pytest
from test_affwild2 import write_fake_affwild2

from modeling_abaw.data import AffWild2, au_pos_weights, expr_class_weights, kfold_video_splits, raw_video_name
from modeling_abaw.data.splits import au_class_weights
from modeling_abaw.errors import InputError
from modeling_abaw.tasks import AU


def test_kfold_video_splits():
    videos = [f"v{i}" for i in range(11)] + ["w_left", "w_right", "z_left", "z_right"]
    folds = kfold_video_splits(videos, k=5, seed=0)
    assert len(folds) == 5
    validation = [video for _, val in folds for video in val]
    assert sorted(validation) == sorted(videos)  # every video validated exactly once
    for train, val in folds:
        assert not set(train) & set(val) and sorted(train + val) == sorted(videos)
        for person in ("w", "z"):
            assert (f"{person}_left" in val) == (f"{person}_right" in val)
        assert 2 <= len({raw_video_name(video) for video in val}) <= 3  # 13 raw videos in 5 folds
    assert kfold_video_splits(reversed(videos), k=5, seed=0) == folds
    assert kfold_video_splits(videos, k=5, seed=1) != folds
    with pytest.raises(InputError, match="k=1"):
        kfold_video_splits(videos, k=1)
    with pytest.raises(InputError, match="k=3"):
        kfold_video_splits(["a", "b"], k=3)


def test_class_weights_inverse_frequency():
    au = np.full((10, 12), 0.0)
    au[:5, 0] = 1  # AU1 occurs in 1/2 of the frames
    au[:1, 1] = 1  # AU2 in 1/10 (its rate ignores the invalid frames below)
    au[5:, 1] = AU.invalid_value
    au[:2, 2:] = 1  # the other AUs in 1/5
    au[:, 11] = 0  # AU26 never: nothing to rebalance, weight 1
    # negatives / positives over the labelled frames: AU1 5/5, AU2 4/1, the others 8/2.
    np.testing.assert_allclose(au_pos_weights(au), [1, 4] + [4] * 9 + [1], rtol=1e-6)
    assert au_pos_weights(au[None]).shape == (12,)  # clip labels (B, K, 12) work too

    expr = np.array([0] * 6 + [1] * 3 + [4] * 1 + [-1] * 5)
    expected = np.zeros(8)
    expected[[0, 1, 4]] = [6 / 6, 6 / 3, 6 / 1]  # N_max / N_c; absent classes 0
    np.testing.assert_allclose(expr_class_weights(expr), expected, rtol=1e-6)
    assert (expr_class_weights(np.full(4, -1)) == 0).all()


def test_class_weights_read_the_label_column_of_a_frame_table(tmp_path):
    """D10a: a frame table (what `AffWild2.frame_table` returns) used to fail with a bare ValueError."""
    write_fake_affwild2(tmp_path)
    frames = AffWild2(tmp_path).frame_table(["train", "validation"])
    columns = frames.with_format("numpy")
    np.testing.assert_array_equal(au_class_weights(frames), au_class_weights(columns["au_labels"][:]))
    np.testing.assert_array_equal(au_pos_weights(frames), au_pos_weights(columns["au_labels"][:]))
    np.testing.assert_array_equal(expr_class_weights(frames), expr_class_weights(columns["expr_labels"][:]))
    some = frames.select([0, 2, 3, 7])  # a selection of rows, as after a k-fold split
    np.testing.assert_array_equal(au_pos_weights(some), au_pos_weights(np.array(some["au_labels"])))


def test_class_weights_name_what_is_wrong_with_their_input(tmp_path):
    write_fake_affwild2(tmp_path)
    au_only = AffWild2(tmp_path).frame_table("train", tasks="au")
    with pytest.raises(InputError, match="expr_class_weights: the frame table has no expr_labels column"):
        expr_class_weights(au_only)
    with pytest.raises(InputError, match="au_class_weights: the frame table has no au_labels column"):
        au_class_weights(AffWild2(tmp_path).frame_table("train", tasks="expr"))
    with pytest.raises(InputError, match=r"au_pos_weights: expected au labels .* \(\.\.\., 12\).* got shape \(5, 2\)"):
        au_pos_weights(np.zeros((5, 2)))  # e.g. VA labels
    with pytest.raises(InputError, match="got dict"):
        au_pos_weights({"au_labels": [[0] * 12]})
    with pytest.raises(InputError, match="got str"):
        au_pos_weights("frames.arrow")  # a path is not a table
    with pytest.raises(InputError, match="row 2: AU2 = 0.7 is out of range"):
        au_pos_weights(np.array([[0] * 12, [0, 0.7] + [0] * 10]))  # probabilities are not labels
    with pytest.raises(InputError, match="row 1: class index = 8 is out of range"):
        expr_class_weights(np.array([8, 0]))
