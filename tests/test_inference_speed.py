"""The pipeline's speed paths keep its answers: frame stride (encode every k-th face frame, interpolate the others)
and decoding/cropping overlapped with the encoder in a background thread."""

import threading

import numpy as np
import pandas as pd
import pytest

from modeling_abaw.errors import InputError
from modeling_abaw.inference import AffectPipeline
from modeling_abaw.inference import pipeline as pipeline_module
from modeling_abaw.inference.streaming import ClipFusion, FrameSources, StreamedAudio, stride_keyframes
from modeling_abaw.prefetch import prefetch
from modeling_abaw.tasks import AU, EXPR, VA

PREDICTIONS = [*AU.labels, *EXPR.labels, *VA.labels]


@pytest.fixture(scope="module")
def video(tiny_synthaffect):
    return tiny_synthaffect / "videos" / "synth_002.mp4"


def _pipeline(model_dir, **kwargs):
    return AffectPipeline.from_pretrained(model_dir, device="cpu", dtype="float32", smoothing="none", **kwargs)


def test_stride_keyframes_cover_each_run_of_face_frames_from_its_first_to_its_last():
    # Two runs: frames 0-6 and 10-11 (frames 7-9 without a face), in any order.
    frames = [11, 0, 1, 2, 3, 4, 5, 6, 10]
    assert stride_keyframes(frames, 1).tolist() == [0, 1, 2, 3, 4, 5, 6, 10, 11]
    assert stride_keyframes(frames, 3).tolist() == [0, 3, 6, 10, 11]
    assert stride_keyframes(frames, 4).tolist() == [0, 4, 6, 10, 11]
    assert stride_keyframes([], 3).tolist() == []


def test_frame_sources_interpolate_in_time_and_fill_faceless_frames_from_the_nearest_face_frame():
    # Face frames 0-3 (0 and 3 encoded) and 6; frames 4 and 5 without a face. Times uneven: frame 2 is twice as far
    # from frame 1 as frame 1 from frame 0.
    times = np.array([0.0, 0.1, 0.3, 0.4, 0.5, 0.6, 0.7])
    has_face = np.array([1, 1, 1, 1, 0, 0, 1], bool)
    sources = FrameSources.build(has_face, np.array([0, 3, 6]), times)
    values = np.array([[0.0, 1.0], [9, 9], [9, 9], [0.8, 0.2], [9, 9], [9, 9], [0.5, 0.5]], np.float32)
    expected = [[0.0, 1.0], [0.2, 0.8], [0.6, 0.4], [0.8, 0.2], [0.8, 0.2], [0.5, 0.5], [0.5, 0.5]]
    np.testing.assert_allclose(sources.blend(values, np.arange(7)), expected, atol=1e-6)
    assert sources.lower.tolist() == [0, 0, 0, 3, 3, 6, 6] and sources.upper.tolist() == [0, 3, 3, 3, 3, 6, 6]
    # Every encoded frame is its own source, exactly: stride 1 changes nothing.
    every = FrameSources.build(has_face, np.flatnonzero(has_face), times)
    np.testing.assert_array_equal(every.blend(values, np.flatnonzero(has_face)), values[has_face])


def test_stride_encodes_keyframes_exactly_and_interpolates_the_rest(video, tiny_face_mae_affect_dir):
    every = _pipeline(tiny_face_mae_affect_dir)(video)
    strided = _pipeline(tiny_face_mae_affect_dir, stride=3)(video)
    assert (every["predicted"] == every["has_face"]).all()  # stride 1: every face frame is encoded
    encoded = strided["predicted"].to_numpy().astype(bool)
    assert encoded.sum() < 0.5 * every["has_face"].sum() and (strided["has_face"] >= strided["predicted"]).all()
    # Encoded frames are the same crops through the same model: the same predictions.
    np.testing.assert_allclose(strided.loc[encoded, PREDICTIONS], every.loc[encoded, PREDICTIONS], atol=1e-6)
    # Every other face frame lies between two encoded frames of its stretch, on their straight line.
    times, values = strided["timestamp"].to_numpy(), strided[PREDICTIONS].to_numpy()
    keyframes = np.flatnonzero(encoded)
    for index in np.flatnonzero(strided["has_face"].to_numpy().astype(bool) & ~encoded):
        before, after = keyframes[keyframes < index].max(), keyframes[keyframes > index].min()
        weight = (times[index] - times[before]) / (times[after] - times[before])
        np.testing.assert_allclose(values[index], (1 - weight) * values[before] + weight * values[after], atol=1e-5)
    assert not np.isnan(values[strided["has_face"] == 1]).any()
    with pytest.raises(InputError, match="stride must be positive"):
        _pipeline(tiny_face_mae_affect_dir, stride=0)


def test_prefetch_keeps_order_raises_the_producers_error_and_stops_its_thread():
    assert list(prefetch(range(50), depth=2)) == list(range(50))
    assert list(prefetch(range(5), depth=0)) == list(range(5))

    def failing():
        yield 1
        raise ValueError("unreadable frame 2")

    with pytest.raises(ValueError, match="unreadable frame 2"):
        list(prefetch(failing()))

    closed = threading.Event()

    def endless():
        try:
            while True:
                yield 0
        finally:
            closed.set()

    items = prefetch(endless(), depth=2)
    next(items)
    items.close()  # the caller stops early: the producer's generator is closed and its thread joined
    assert closed.is_set() and not any(thread.name == "prefetch" for thread in threading.enumerate())


def test_overlapped_decoding_gives_the_same_table_as_decoding_in_turn(video, tiny_face_mae_affect_dir, monkeypatch):
    pipeline = _pipeline(tiny_face_mae_affect_dir, batch_size=7)  # several batches, one of them partial
    overlapped = pipeline(video)
    monkeypatch.setattr(pipeline_module, "prefetch", lambda items: prefetch(items, depth=0))
    pd.testing.assert_frame_equal(overlapped, pipeline(video))


def test_clip_fusion_keeps_only_the_features_of_pending_clips(tiny_tmf_dir):
    """Flat memory on the TMF path: however long the video, the fusion holds the visual features and aligned audio
    rows of at most a batch of clips, and gives every frame a prediction."""
    pipeline = AffectPipeline.from_pretrained(tiny_tmf_dir, device="cpu", dtype="float32", batch_size=2)
    clip_length = pipeline.model.config.clip_length
    for num_frames in (300, 3000):
        has_face = np.ones(num_frames, bool)
        has_face[100:140] = False  # a stretch without the face
        times = np.arange(num_frames) / 30
        keyframes = stride_keyframes(np.flatnonzero(has_face), 3)
        audio = StreamedAudio(pipeline.audio_extractors, None, times)  # absent audio: zero rows, mask 0
        fusion = ClipFusion(pipeline.model, pipeline.tasks, FrameSources.build(has_face, keyframes, times), audio,
                            batch_size=2)  # fmt: skip
        largest = 0
        for first in range(0, len(keyframes), 8):
            frames = keyframes[first : first + 8]
            fusion.add(frames, {"features": np.ones((len(frames), 32), np.float32)})
            largest = max(largest, len(fusion.features))
            assert len(audio.rows["hubert"]) <= 2 * clip_length
        predictions = fusion.finish()
        assert all(values.shape[0] == num_frames and not np.isnan(values).any() for values in predictions.values())
        # Two clips of keyframes (a third of their frames), plus the batch just added and the stretch's edges.
        assert largest <= 2 * clip_length // 3 + 8 + 4
