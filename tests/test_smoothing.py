import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d, median_filter, uniform_filter1d

from modeling_abaw.smoothing import (
    fill_missing_frames,
    postprocess_by_video,
    postprocess_video,
    smooth_task,
    validate_smoothing_policy,
)
from modeling_abaw.tasks import AU, EXPR, VA, default_smoothing_policy


def random_video(rng, num_frames=120):
    expr = rng.random((num_frames, EXPR.num_outputs))
    return {
        "au": rng.random((num_frames, AU.num_outputs)),
        "expr": expr / expr.sum(1, keepdims=True),
        "va": rng.uniform(-1, 1, size=(num_frames, 2)),
    }


def scipy_reference(values, spec):
    """The filter of `spec` called directly, along time, with the documented boundary mode."""
    if spec["filter"] == "gaussian":
        return gaussian_filter1d(values, spec["sigma"], axis=0, mode="nearest")
    if spec["filter"] == "median":
        return median_filter(values, size=(spec["window"], 1), mode="nearest")
    return uniform_filter1d(values, spec["window"], axis=0, mode="nearest")


@pytest.mark.parametrize("filter_name", ["gaussian", "median", "average"])
@pytest.mark.parametrize("task", [AU, EXPR, VA])
def test_filters_match_direct_scipy_calls(task, filter_name):
    values = random_video(np.random.default_rng(0))[task.name]
    policy = default_smoothing_policy([task.name], filter_name)
    expected = scipy_reference(values, policy[task.name])
    if task is EXPR:
        expected = expected / expected.sum(1, keepdims=True)
    np.testing.assert_allclose(smooth_task(values, task.name, policy), expected, rtol=1e-12, atol=1e-12)


def test_default_policy_uses_the_paper_parameters_from_tasks():
    assert default_smoothing_policy() == {
        task.name: {"filter": "gaussian", "sigma": float(task.smoothing_sigma)} for task in (AU, EXPR, VA)
    }
    assert default_smoothing_policy(["va", "au"], "median") == {
        "au": {"filter": "median", "window": AU.smoothing_window},
        "va": {"filter": "median", "window": VA.smoothing_window},
    }


def test_outputs_stay_in_range_and_none_is_identity():
    rng = np.random.default_rng(1)
    video = random_video(rng)
    for values in (video["expr"], np.eye(EXPR.num_outputs)[rng.integers(0, EXPR.num_outputs, 120)]):
        smoothed = smooth_task(values, "expr", {"expr": {"filter": "median"}})
        assert (smoothed >= 0).all() and np.allclose(smoothed.sum(1), 1.0)
    # On one-hot frames the per-class median zeroes whole frames; those keep their own probabilities.
    zeroed = median_filter(values, size=(EXPR.smoothing_window, 1), mode="nearest").sum(1) == 0
    assert zeroed.any()
    np.testing.assert_array_equal(smoothed[zeroed], values[zeroed])
    va = np.clip(video["va"] * 5, -1, 1)
    assert np.abs(smooth_task(va, "va", {"va": {"filter": "gaussian", "sigma": 3}})).max() <= 1.0
    unchanged = smooth_task(video["au"], "au", {"au": {"filter": "none"}})
    np.testing.assert_array_equal(unchanged, video["au"])
    assert unchanged is not video["au"]
    assert smooth_task(video["au"].astype(np.float32), "au", default_smoothing_policy()).dtype == np.float32


def test_logits_and_bad_shapes_are_rejected():
    policy = default_smoothing_policy()
    with pytest.raises(ValueError, match=r"au predictions must be probabilities"):
        smooth_task(np.full((5, AU.num_outputs), 3.0), "au", policy)
    with pytest.raises(ValueError, match=r"va predictions must have shape \(frames, 2\)"):
        smooth_task(np.zeros((5, 3)), "va", policy)
    with pytest.raises(ValueError, match="no entry for task 'expr'"):
        smooth_task(np.full((5, 8), 1 / 8), "expr", {"au": {"filter": "none"}})


def test_fill_missing_frames_takes_nearest_face_frame():
    has_face = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    values = np.arange(10.0)[:, None] * np.ones((1, 3))
    filled = fill_missing_frames(values, has_face)
    # leading edge -> first face; 6 is equidistant from 4 and 8 -> the earlier; trailing edge -> last face.
    np.testing.assert_array_equal(filled[:, 0], [1, 1, 1, 4, 4, 4, 4, 8, 8, 8])
    np.testing.assert_array_equal(values[:, 0], np.arange(10.0))  # input untouched
    no_face = fill_missing_frames(values, np.zeros(10, dtype=bool))
    np.testing.assert_array_equal(no_face, values)
    with pytest.raises(ValueError, match="has_face must have shape"):
        fill_missing_frames(values, has_face[:5])


def test_postprocess_video_fills_then_smooths():
    rng = np.random.default_rng(2)
    video, has_face = random_video(rng), rng.random(120) > 0.3
    policy = {"au": {"filter": "gaussian", "sigma": 2.0}, "expr": {"filter": "median"}, "va": {"filter": "average"}}
    processed = postprocess_video(video, has_face, policy)
    for name, values in video.items():
        expected = smooth_task(fill_missing_frames(values, has_face), name, policy)
        np.testing.assert_array_equal(processed[name], expected)
    np.testing.assert_array_equal(postprocess_video(video, None, policy)["au"], smooth_task(video["au"], "au", policy))


def test_postprocess_by_video_never_mixes_videos_and_keeps_order():
    # Video "a" ends in a spike; the frames of "b" after it must stay exactly 0.
    va = np.zeros((60, 2))
    va[29] = 1.0
    ids = np.array(["a"] * 30 + ["b"] * 30)
    smoothed = postprocess_by_video({"va": va}, ids, None, {"va": {"filter": "gaussian", "sigma": 5.0}})["va"]
    assert smoothed[28, 0] > 0 and (smoothed[30:] == 0).all()

    # Interleaved, non-contiguous ids: each video is processed on its own frames, in their order.
    rng = np.random.default_rng(3)
    frames = random_video(rng, 90)
    ids, has_face = rng.choice(["x", "y", "z"], size=90), rng.random(90) > 0.2
    policy = default_smoothing_policy()
    result = postprocess_by_video(frames, ids, has_face, policy)
    for video_id in "xyz":
        mask = ids == video_id
        alone = postprocess_video({name: values[mask] for name, values in frames.items()}, has_face[mask], policy)
        for name in frames:
            np.testing.assert_array_equal(result[name][mask], alone[name])
    with pytest.raises(ValueError, match="has_face has 10 frames but video_ids has 90"):
        postprocess_by_video(frames, ids, has_face[:10], policy)


@pytest.mark.parametrize(
    "policy, message",
    [
        ([("au", "gaussian")], "must be a dict of task"),
        ({"face": {"filter": "none"}}, "unknown task 'face'"),
        ({"au": "gaussian"}, r"policy\['au'\] must be a dict with a 'filter' key"),
        ({"au": {"filter": "kalman"}}, r"policy\['au'\]\['filter'\] is 'kalman'"),
        ({"au": {"filter": "gaussian", "sigma": -1}}, r"policy\['au'\]\['sigma'\] must be a positive number"),
        ({"va": {"filter": "gaussian", "sigma": "5"}}, r"policy\['va'\]\['sigma'\]"),
        ({"expr": {"filter": "median", "window": 2.5}}, r"policy\['expr'\]\['window'\] must be a positive whole"),
        ({"expr": {"filter": "average", "window": True}}, r"policy\['expr'\]\['window'\]"),
        ({"va": {"filter": "median", "sigma": 5}}, r"policy\['va'\] has unexpected key\(s\) \['sigma'\]"),
    ],
)
def test_policy_validation_names_the_bad_key(policy, message):
    with pytest.raises(ValueError, match=message):
        validate_smoothing_policy(policy)


def test_policy_json_round_trip():
    policy = validate_smoothing_policy(
        {"va": {"filter": "none"}, "au": {"filter": "gaussian", "sigma": 5}, "expr": {"filter": "median"}}
    )
    assert policy == {
        "au": {"filter": "gaussian", "sigma": 5.0},
        "expr": {"filter": "median", "window": EXPR.smoothing_window},
        "va": {"filter": "none"},
    }
    assert validate_smoothing_policy(json.loads(json.dumps(policy))) == policy


def test_chain_validation_keeps_each_form_and_names_the_bad_step():
    single = {"filter": "gaussian", "sigma": 2.0}
    chain = [{"filter": "median", "window": 5}, {"filter": "gaussian"}]
    policy = validate_smoothing_policy({"au": chain, "va": single})
    assert policy == {"au": [{"filter": "median", "window": 5}, {"filter": "gaussian", "sigma": 5.0}], "va": single}
    assert validate_smoothing_policy(json.loads(json.dumps(policy))) == policy
    bad_chains = [
        ([], r"policy\['au'\] is an empty chain"),
        ([{"filter": "median"}, {"filter": "kalman"}], r"policy\['au'\]\[1\]\['filter'\] is 'kalman'"),
        ([{"filter": "gaussian", "sigma": 0}], r"policy\['au'\]\[0\]\['sigma'\] must be a positive number"),
        ([{"filter": "none"}, "median"], r"policy\['au'\]\[1\] must be a dict with a 'filter' key"),
        ([[{"filter": "none"}]], r"policy\['au'\]\[0\] must be a dict"),
    ]
    for bad, message in bad_chains:
        with pytest.raises(ValueError, match=message):
            validate_smoothing_policy({"au": bad})


@pytest.mark.parametrize("task", [AU, EXPR, VA])
def test_a_chain_applies_its_steps_in_order(task):
    rng = np.random.default_rng(4)
    video, has_face = random_video(rng), rng.random(120) > 0.3
    steps = [{"filter": "median", "window": 7}, {"filter": "gaussian", "sigma": 3.0}, {"filter": "average"}]
    expected = fill_missing_frames(video[task.name], has_face)
    for step in steps:
        expected = smooth_task(expected, task.name, {task.name: step})
    chained = postprocess_video({task.name: video[task.name]}, has_face, {task.name: steps})[task.name]
    np.testing.assert_array_equal(chained, expected)
    # Each step keeps the task's invariants (and so does the chain): EXPR rows sum to 1, VA within [-1, 1].
    if task is EXPR:
        np.testing.assert_allclose(chained.sum(1), 1.0)
    assert chained.min() >= task.prediction_range[0] and chained.max() <= task.prediction_range[1]
    # A one-step chain is the spec itself.
    single = postprocess_video({task.name: video[task.name]}, has_face, {task.name: steps[1]})[task.name]
    np.testing.assert_array_equal(
        single, postprocess_video({task.name: video[task.name]}, has_face, {task.name: steps[1:2]})[task.name]
    )
