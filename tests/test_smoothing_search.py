"""The smoothing search (paper Table 9): candidates, the winner on signals whose answer is known, ties, the report."""

import json

import numpy as np
import pytest

from modeling_abaw.smoothing import postprocess_by_video
from modeling_abaw.smoothing_search import (
    CHAIN_SEEDS_PER_FILTER,
    PARAMETRIC_FILTERS,
    candidate_policies,
    search_smoothing,
    write_search_report,
)
from modeling_abaw.tasks import AU, TASKS, VA, default_smoothing_policy


def step_signal(rng, num_frames, num_columns, segment=60):
    """0/1 steps held for `segment` frames: what a median filter restores from sparse impulse noise."""
    steps = rng.integers(0, 2, size=(num_frames // segment + 1, num_columns)).astype(np.float32)
    return np.repeat(steps, segment, axis=0)[:num_frames]


def test_candidates_include_the_papers_values_and_none():
    for name in TASKS:
        entries = candidate_policies(name)
        assert entries[0] == {"filter": "none"}
        for kind in PARAMETRIC_FILTERS:
            assert default_smoothing_policy([name], kind)[name] in entries
        assert len({json.dumps(entry, sort_keys=True) for entry in entries}) == len(entries)


def test_the_median_filter_that_restores_steps_from_impulse_noise_wins():
    # Valence/arousal steps of 30 frames with isolated one-frame spikes away from the steps' edges: a 3-frame median
    # restores the labels exactly (CCC 1); wider medians do too, but a tie goes to the first (smaller) window, and
    # every gaussian, average or chain smears the steps.
    rng = np.random.default_rng(0)
    labels = np.repeat(rng.choice([-0.5, 0.5], size=(20, 2)), 30, axis=0).astype(np.float32)
    frame = np.arange(len(labels))
    spikes = (frame % 30 >= 2) & (frame % 30 <= 27) & (frame % 4 == 0)
    predictions = labels.copy()
    predictions[spikes] = -np.sign(labels[spikes])
    videos = np.repeat(["a", "b"], 300)
    search = search_smoothing({"va": predictions}, {"va": labels}, videos, np.ones(600, bool), ["va"])
    va = search.tasks["va"]
    assert va.best.entry == {"filter": "median", "window": 3} and va.best.score == pytest.approx(1.0)
    assert search.policy == {"va": {"filter": "median", "window": 3}}
    assert all(c.score < 1 - 1e-6 for c in va.candidates if c.kind != "median")
    for kind in PARAMETRIC_FILTERS:
        paper = va.paper_candidate(kind)
        assert paper.entry == default_smoothing_policy(["va"], kind)["va"]
        assert va.paper_scores[kind] == paper.score <= va.best.score
    # The number of candidates the docstring states: none + the grids + the chains of two.
    chains = [c for c in va.candidates if c.complexity == 2]
    seeds = CHAIN_SEEDS_PER_FILTER * len(PARAMETRIC_FILTERS)
    assert len(chains) == seeds * (seeds - CHAIN_SEEDS_PER_FILTER)
    assert len(va.candidates) == len(candidate_policies("va")) + len(chains)


def test_each_score_is_the_metric_after_fill_and_policy():
    rng = np.random.default_rng(1)
    labels = rng.uniform(-1, 1, (300, 2)).astype(np.float32)
    predictions = np.clip(labels + rng.normal(0, 0.3, labels.shape), -1, 1)
    videos, has_face = np.repeat(["x", "y", "z"], 100), rng.random(300) > 0.2
    search = search_smoothing({"va": predictions}, {"va": labels}, videos, has_face)
    from modeling_abaw.metrics import compute_abaw_metrics

    for candidate in search.tasks["va"].candidates[::7]:
        smoothed = postprocess_by_video({"va": predictions}, videos, has_face, {"va": candidate.entry})
        assert candidate.score == pytest.approx(compute_abaw_metrics(smoothed, {"va": labels})["va_ccc"], abs=1e-9)


def test_ties_go_to_the_simpler_policy():
    # Constant predictions and labels: every policy leaves them as they are, so every score ties.
    labels = np.ones((200, AU.num_outputs), np.float32)
    search = search_smoothing({"au": np.full(labels.shape, 0.9)}, {"au": labels}, np.zeros(200), np.ones(200, bool))
    assert len({c.score for c in search.tasks["au"].candidates}) == 1
    assert search.policy == {"au": {"filter": "none"}}


def test_a_task_without_labels_is_an_error():
    labels = np.full((50, 2), VA.invalid_value, np.float32)
    with pytest.raises(ValueError, match="No labelled frame of task 'va'"):
        search_smoothing({"va": np.zeros((50, 2))}, {"va": labels}, np.zeros(50), np.ones(50, bool))


def test_report_has_table_9_rows_every_candidate_and_a_figure(tmp_path):
    rng = np.random.default_rng(2)
    labels = {"au": step_signal(rng, 400, AU.num_outputs), "expr": rng.integers(0, 8, 400)}
    expr = np.eye(8)[labels["expr"]] * 0.5 + rng.random((400, 8)) * 0.5
    predictions = {"au": np.clip(labels["au"] * 0.5 + rng.random(labels["au"].shape) * 0.5, 0, 1),
                   "expr": expr / expr.sum(1, keepdims=True)}  # fmt: skip
    search = search_smoothing(predictions, labels, np.repeat(["a", "b"], 200), rng.random(400) > 0.1)
    paths = write_search_report(search, tmp_path / "model")
    assert [path.name for path in paths] == ["smoothing_search.md", "smoothing_search.json", "smoothing_search.png"]
    markdown = paths[0].read_text()
    for row in (
        "| none |",
        "| gaussian ★ |",
        "| median ★ |",
        "| average ★ |",
        "| chain of two, best |",
        "| **chosen** |",
    ):
        assert row in markdown
    assert "| gaussian | σ=5 ★ |" in markdown and "| median | 25 ★ |" in markdown  # AU's sigma, EXPR's window
    assert markdown.count("(chosen)") == 2
    report = json.loads(paths[1].read_text())
    assert report["policy"] == search.policy
    for name in ("au", "expr"):
        assert len(report["tasks"][name]["candidates"]) == len(search.tasks[name].candidates)
        assert report["tasks"][name]["chosen"]["score"] == search.tasks[name].best.score
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
