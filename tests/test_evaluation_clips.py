"""TMF evaluation over clips: without overlap every frame keeps its clip's prediction; overlapping clips (a stride
below the clip length) average the predictions of every clip covering a frame."""

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from modeling_abaw import TMFConfig, TMFForAffect, evaluation
from modeling_abaw.data import AffWild2, ClipDataset, IndexedDataset

CLIP_LENGTH, FEATURE_SIZE = 16, 8


def load_features(video: str, start: int, stop: int) -> dict[str, torch.Tensor]:
    """Deterministic per-frame features: the same frame gets the same feature in every clip."""
    frames = torch.arange(start, stop, dtype=torch.float32)[:, None]
    offset = float(sum(map(ord, video)) % 7)
    return {"mae": torch.sin(frames * 0.3 + offset + torch.arange(FEATURE_SIZE))}


@pytest.fixture(scope="module")
def frames(tiny_synthaffect):
    return AffWild2(tiny_synthaffect).frame_table("validation")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = TMFConfig(
        modalities={"mae": FEATURE_SIZE}, hidden_size=16, num_attention_heads=2, intermediate_size=32,
        num_hidden_layers=1, clip_length=CLIP_LENGTH,
    )  # fmt: skip
    return TMFForAffect(config).eval()


def scored_inputs(monkeypatch, model, frames, stride):
    """The (rows, predictions) that evaluate_clips hands to abaw_scores, and its result."""
    captured = {}

    def capture(frames, rows, predictions, smoothing_policy):
        captured.update(rows=rows, predictions=predictions)
        return {"score": 0.0}

    monkeypatch.setattr(evaluation, "abaw_scores", capture)
    clips = ClipDataset(frames, load_features, clip_length=CLIP_LENGTH, stride=stride)
    loader = DataLoader(IndexedDataset(clips, seed=0), batch_size=3)
    evaluation.evaluate_clips(Accelerator(cpu=True), model, loader, clips, frames)
    return clips, captured["rows"], captured["predictions"]


@torch.no_grad()
def clip_predictions(model, clips, index):
    item = clips[index]
    batch = {name: value[None] for name, value in item.items() if isinstance(value, torch.Tensor)}
    outputs = model(**evaluation.tmf_inputs(batch, model.config), attention_mask=batch["attention_mask"])
    real = item["attention_mask"].bool()
    return {
        name: values[0][real].numpy()
        for name, values in evaluation.affect_predictions(outputs, model.config.tasks).items()
    }


def test_clips_without_overlap_keep_each_frames_prediction(monkeypatch, model, frames):
    clips, rows, predictions = scored_inputs(monkeypatch, model, frames, stride=None)
    assert rows.tolist() == list(range(len(frames)))  # every frame once
    for index, (_, first_row, length) in enumerate(clips.clips):
        expected = clip_predictions(model, clips, index)
        for task, values in expected.items():
            np.testing.assert_array_equal(predictions[task][first_row : first_row + length], values)


def test_overlapping_clips_average_the_predictions_of_every_clip_covering_a_frame(monkeypatch, model, frames):
    stride = CLIP_LENGTH // 4
    clips, rows, predictions = scored_inputs(monkeypatch, model, frames, stride=stride)
    assert rows.tolist() == list(range(len(frames)))
    sums = {task: np.zeros_like(values, dtype=np.float64) for task, values in predictions.items()}
    counts = np.zeros(len(frames))
    for index, (_, first_row, length) in enumerate(clips.clips):
        for task, values in clip_predictions(model, clips, index).items():
            sums[task][first_row : first_row + length] += values
        counts[first_row : first_row + length] += 1
    assert counts.max() > 1  # the clips do overlap
    for task, values in predictions.items():
        np.testing.assert_allclose(values, sums[task] / counts[:, None], rtol=0, atol=1e-6)
    # Overlap changes the predictions (each clip sees a frame in another context).
    _, _, tiled = scored_inputs(monkeypatch, model, frames, stride=None)
    assert not np.allclose(tiled["au"], predictions["au"])
