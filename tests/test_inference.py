"""Video and image inference: decoding, face detection and tracking, crops, the pipeline with FaceMAE and TMF models.

Faces are SynthAffect's procedural faces: raw SynthAffect videos, and clips drawn here with the same face drawing at
known places (so detections can be checked against where faces really are). Models are tiny and random.
"""

import fractions
import json
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import expected_table_columns
from PIL import Image

from modeling_abaw import FaceMAEForAffect, TMFForAffect, face_image_processor
from modeling_abaw.alignment import aligned_square
from modeling_abaw.data.synth import Placement, draw_face, paste_face, random_background, random_identity
from modeling_abaw.errors import InputError
from modeling_abaw.evaluation import affect_predictions, tmf_inputs
from modeling_abaw.inference import (
    AffectPipeline,
    Box,
    FaceDetector,
    FaceTracker,
    HaarFaceDetector,
    MissingAudioWarning,
    NoFaceWarning,
    crop_around_box,
    crop_face,
)
from modeling_abaw.inference.pipeline import LANDMARK_COLUMNS, table_face_box
from modeling_abaw.inference.streaming import ClipFusion, FrameSources
from modeling_abaw.media import load_audio, open_media, stream_audio, video_frame_times
from modeling_abaw.tasks import AU, EXPR, VA

TABLE_COLUMNS = expected_table_columns()


# ---------------------------------------------------------------------------------------------------------- helpers


def draw_scene(num_frames, placements, size=(320, 240), seed=1):
    """Frames of one face (identity `seed`) over a room; `placements[i]` is None where no face is drawn."""
    rng = np.random.default_rng(seed)
    identity, background = random_identity(rng), random_background(rng, *size)
    frames = []
    for index in range(num_frames):
        frame = background.copy()
        if placements[index] is not None:
            rgb, alpha = draw_face(identity, np.zeros(len(AU.labels), np.float32), int(placements[index].size))
            paste_face(frame, rgb, alpha, placements[index])
        frames.append(frame)
    return frames


def write_video(path, frames, fps=25, times=None, audio_seconds=None, rotation=0):
    """Encode RGB frames (H.264, or the container's default codec) at `fps` or at explicit `times` (seconds), with
    a tone as AAC audio when `audio_seconds` is given and a display rotation when `rotation` is set."""
    time_base = fractions.Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.time_base, stream.codec_context.time_base = "yuv420p", time_base, time_base
        if rotation:
            stream.set_display_rotation(rotation)
        audio = container.add_stream("aac", rate=16000, layout="mono") if audio_seconds else None
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = round((index / fps if times is None else times[index]) * 1000)
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio:
            samples = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(16000 * audio_seconds)) / 16000)).astype(np.float32)
            for start in range(0, len(samples), 1024):
                chunk = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 16000, start, fractions.Fraction(1, 16000)
                container.mux(audio.encode(chunk))
            container.mux(audio.encode(None))
    return path


def predictions(table):
    return table[[*AU.labels, *EXPR.labels, *VA.labels]].to_numpy()


# --------------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pipeline(tiny_face_mae_affect_dir):
    return AffectPipeline.from_pretrained(tiny_face_mae_affect_dir, device="cpu", dtype="float32", smoothing="none")


@pytest.fixture(scope="module")
def synth(tiny_synthaffect):
    """The shared SynthAffect data (4 videos x 40 frames at 30 fps) and what its generator wrote about it."""
    return tiny_synthaffect, json.loads((tiny_synthaffect / "synthaffect.json").read_text())


# ------------------------------------------------------------------------------------------------- faces and crops


class ScriptedDetector(FaceDetector):
    """Returns the boxes scripted for each call, so tracking logic is tested without a real detector."""

    def __init__(self, script):
        self.script, self.calls = list(script), 0

    def __call__(self, image, min_size=0, max_size=float("inf")):
        boxes = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return list(boxes)


def test_tracker_links_boxes_and_groups_people():
    a, b, ghost = Box(10, 10, 50, 50), Box(200, 20, 60, 60), Box(120, 150, 30, 30)
    # 0-9: a and b; 10: a, b and a two-frame false alarm; 12-19: a is gone; 20-29: a is back, slightly moved.
    script = [[a, b]] * 10 + [[a, b, ghost]] * 2 + [[b]] * 8 + [[a._replace(x=14), b]] * 10
    tracker = FaceTracker(ScriptedDetector(script), detect_every=1, max_gap=3)
    for _ in range(30):
        tracker.update(np.zeros((240, 320, 3), np.uint8))
    main, other = tracker.faces(min_frames=5)  # the ghost (2 frames) is dropped
    assert len(tracker.tracks) == 4  # a, b, ghost, a again after its gap (more than max_gap frames)
    assert sorted(main.boxes) == list(range(30)) and main.boxes[0] == b  # b: 30 frames x 3600 px^2
    assert sorted(other.boxes) == [*range(12), *range(20, 30)]  # a's two tracks make one person
    assert other.boxes[25].x == 14


def test_tracker_searches_near_faces_between_scans():
    image = draw_scene(1, [Placement(160, 120, 120, 0)])[0]
    from modeling_abaw.inference import HaarFaceDetector

    class Counting(HaarFaceDetector):
        sizes = []

        def __call__(self, image, min_size=0, max_size=float("inf")):
            self.sizes.append(image.shape[:2])
            return super().__call__(image, min_size, max_size)

    detector = Counting()
    tracker = FaceTracker(detector, detect_every=5)
    for _ in range(7):
        tracker.update(image)
    (face,) = tracker.faces()
    assert sorted(face.boxes) == list(range(7))
    full = [size for size in detector.sizes if size == (240, 320)]
    assert len(full) == 2  # frames 0 and 5; the others search a small window
    assert max(h * w for h, w in detector.sizes if (h, w) != (240, 320)) < 0.25 * 240 * 320


def test_crop_around_box_is_a_square_around_the_box_with_replicated_borders():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 255
    crop = crop_around_box(image, Box(80, 30, 40, 40), size=56, crop_scale=1.4)  # 56 x 56 square, no resizing
    assert crop.shape == (56, 56, 3)
    assert (crop[:, :28] == 0).all() and (crop[:, 28:] == 255).all()
    corner = crop_around_box(image, Box(-10, -10, 40, 40), size=28, crop_scale=1.0)  # half outside: border repeated
    assert corner.shape == (28, 28, 3) and (corner == 0).all()


# ------------------------------------------------------------------------------------------------------ decoding


def test_variable_frame_rate_timestamps_and_rotation(tmp_path):
    times = np.cumsum([0, 0.04, 0.04, 0.1, 0.02, 0.2, 0.04, 0.04])
    frames = draw_scene(len(times), [Placement(160, 120, 120, 0)] * len(times))
    # Stored sideways with a display rotation of +90 degrees: upright once the rotation is applied.
    sideways = [np.ascontiguousarray(np.rot90(frame, -1)) for frame in frames]
    path = write_video(tmp_path / "vfr.mp4", sideways, times=times, rotation=90)
    media = open_media(path)
    assert (media.width, media.height) == (320, 240)
    decoded = list(media.frames())
    np.testing.assert_allclose([frame.time for frame in decoded], times, atol=1e-3)
    assert decoded[0].image.shape == (240, 320, 3)
    assert np.abs(decoded[0].image.astype(int) - frames[0]).mean() < 8  # upright, not rotated
    assert [frame.image.shape for frame in media.frames(max_side=160)][0] == (120, 160, 3)


@pytest.mark.smoke
def test_every_decoding_path_of_a_video_with_audio(tmp_path):
    """What PyAV gives, read through each path of `media` on the installed PyAV (17 and 18 are tested: 18 closes a
    container's streams with it, which `open_media` once read after its `with` block)."""
    frames = draw_scene(30, [Placement(160, 120, 120, 0)] * 30)
    path = write_video(
        tmp_path / "talk.mp4", [np.ascontiguousarray(np.rot90(f, -1)) for f in frames], audio_seconds=1.2, rotation=90
    )
    media = open_media(path)
    assert (media.width, media.height, media.num_frames, media.is_image) == (320, 240, 30, False)
    decoded = list(media.frames())
    assert len(decoded) == media.num_frames and decoded[-1].image.shape == (240, 320, 3)
    np.testing.assert_allclose(video_frame_times(path), [frame.time for frame in decoded])
    np.testing.assert_allclose(video_frame_times(path), np.arange(30) / 25, atol=1e-3)
    clip = load_audio(path)
    assert clip.present and clip.sample_rate == 16000 and abs(clip.duration - 1.2) < 0.1
    assert 0.15 < np.sqrt(np.mean(clip.waveform**2)) < 0.25  # the tone at amplitude 0.3 (RMS 0.21)
    pieces = list(stream_audio(path, chunk_seconds=0.25))
    assert len(pieces) >= 4 and pieces[0].start_time == clip.start_time
    np.testing.assert_array_equal(np.concatenate([piece.waveform for piece in pieces]), clip.waveform)


def test_unreadable_inputs_raise_errors_naming_the_file(tmp_path, pipeline):
    good = write_video(tmp_path / "good.mp4", draw_scene(10, [None] * 10))
    (tmp_path / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "notes.mp4").write_text("not a video\n" * 50)
    (tmp_path / "empty.mkv").write_bytes(b"")
    (tmp_path / "fake.jpg").write_text("not an image")
    (tmp_path / "audio.wav").write_bytes(b"")
    with av.open(str(tmp_path / "audio.wav"), "w") as container:  # a valid file without a video stream
        stream = container.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    for name in ("truncated.mp4", "notes.mp4", "empty.mkv", "fake.jpg", "audio.wav"):
        with pytest.raises(InputError, match=name):
            pipeline(tmp_path / name)
    with pytest.raises(InputError, match="missing.mp4"):
        pipeline(tmp_path / "missing.mp4")


# --------------------------------------------------------------------------------------------------------- pipeline


def test_synthaffect_videos_faces_found_where_drawn(synth, pipeline):
    root, info = synth
    video = root / "videos" / "synth_000.mp4"
    pipeline.landmarks = True
    try:
        with_landmarks = pipeline(video)
    finally:
        pipeline.landmarks = False
    table = with_landmarks.drop(columns=list(LANDMARK_COLUMNS))
    assert list(table.columns) == TABLE_COLUMNS and len(table) == 40
    assert table["frame"].tolist() == list(range(1, 41))
    np.testing.assert_allclose(table["timestamp"], np.arange(40) / 30, atol=1e-6)
    hidden = np.isin(table["frame"], info["missing_images"]["synth_000"])  # a hand covers the face there
    assert table["has_face"][~hidden].mean() >= 0.9
    assert not np.isnan(predictions(table)).any()  # frames without a face are filled
    # The crops look like SynthAffect's own aligned crops of the same frames (crops a quarter of a face off, or
    # 20-30% too small or large, correlate 0.2-0.5): the landmarks are where the face's are drawn.
    frames = [frame.image for frame in open_media(video).frames()]
    correlations = []
    for _, row in with_landmarks[(table["has_face"] == 1) & ~hidden].iterrows():
        ours = crop_face(frames[row.frame - 1], table_face_box(row), 112).mean(axis=2)
        theirs = np.asarray(Image.open(root / "cropped_aligned" / "synth_000" / f"{row.frame:05d}.jpg")).mean(axis=2)
        correlations.append(np.corrcoef(ours.ravel(), theirs.ravel())[0, 1])
    assert np.median(correlations) > 0.65, np.median(correlations)


def test_two_person_video_main_face_stays_on_one_person(synth, pipeline):
    root, info = synth
    video = root / "videos" / f"{info['two_person_video']}.mp4"
    table = pipeline(video)
    centres = (table["face_x"] + table["face_w"] / 2).dropna().to_numpy()
    assert len(centres) >= 30 and np.abs(np.diff(centres)).max() < 20  # never jumps to the other side
    pipeline.all_faces = True
    try:
        both = pipeline(video)
    finally:
        pipeline.all_faces = False
    assert list(both.columns) == ["frame", "face", *TABLE_COLUMNS[1:]]
    assert both.groupby("face").size().to_dict() == {1: 40, 2: 40}
    first, second = (both[both["face"] == number] for number in (1, 2))
    pd.testing.assert_frame_equal(first.drop(columns="face").reset_index(drop=True), table)
    assert (second["face_x"].mean() < 160) != (first["face_x"].mean() < 160)  # left and right person


def test_face_leaving_and_coming_back_is_filled_and_flagged(tmp_path, pipeline):
    placements = [Placement(100 + 2 * i, 120, 110, 0) for i in range(12)] + [None] * 10
    placements += [Placement(150 + 2 * i, 115, 110, 0) for i in range(12)]
    path = write_video(tmp_path / "away.mp4", draw_scene(len(placements), placements))
    pipeline.all_faces = pipeline.landmarks = True
    try:
        table = pipeline(path)
    finally:
        pipeline.all_faces = pipeline.landmarks = False
    assert set(table["face"]) == {1}  # the face that came back is the same face
    detected = table["has_face"].to_numpy().astype(bool)
    assert not detected[12:22].any() and detected[:12].mean() > 0.8 and detected[22:].mean() > 0.8
    assert table.loc[~detected, "face_x"].isna().all()
    values, frames = predictions(table), np.flatnonzero(detected)
    for index in np.flatnonzero(~detected):  # smoothing "none": each filled frame copies the nearest face frame
        nearest = frames[np.argmin(np.abs(frames - index) + (frames > index) * 0.5)]
        np.testing.assert_array_equal(values[index], values[nearest])
    # The crops are where the faces are drawn: the square aligned on the landmarks is the drawn face's square.
    for index in frames:
        placement = placements[index]
        square = aligned_square(np.asarray(table_face_box(table.iloc[index]).landmarks))
        assert np.hypot(square.cx - placement.cx, square.cy - placement.cy) < 0.06 * placement.size
        assert abs(square.size / placement.size - 1) < 0.1 and abs(square.angle) < 4


def test_video_without_any_face_gives_empty_predictions_and_a_warning(tmp_path, pipeline):
    path = write_video(tmp_path / "room.mp4", draw_scene(8, [None] * 8))
    with pytest.warns(NoFaceWarning, match="room.mp4"):
        table = pipeline(path)
    assert list(table.columns) == TABLE_COLUMNS and len(table) == 8
    assert not table["has_face"].any() and np.isnan(predictions(table)).all()
    assert table["expression"].isna().all()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "large"])
def test_images_give_one_row(tmp_path, pipeline, mode):
    image = draw_scene(1, [Placement(150, 110, 120, 0)])[0]
    scale = 10 if mode == "large" else 1  # 3200 x 2400: detection runs on a shrunk copy, boxes in full pixels
    if mode == "large":
        image = np.asarray(Image.fromarray(image).resize((3200, 2400), Image.BILINEAR))
    path = tmp_path / f"face_{mode}.{'jpg' if mode == 'large' else 'png'}"
    Image.fromarray(image).convert("RGB" if mode == "large" else mode).save(path)
    table = pipeline(path)
    assert len(table) == 1 and table.loc[0, "has_face"] == 1 and table.loc[0, "timestamp"] == 0.0
    assert abs(table.loc[0, "face_x"] + table.loc[0, "face_w"] / 2 - 150 * scale) < 8 * scale
    assert not np.isnan(predictions(table)).any() and table.loc[0, "expression"] in EXPR.labels


def test_face_crop_input_gives_the_models_own_predictions(synth, tiny_face_mae_affect_dir):
    path = synth[0] / "cropped_aligned" / "synth_002" / "00001.jpg"
    pipeline = AffectPipeline.from_pretrained(
        tiny_face_mae_affect_dir, device="cpu", dtype="float32", smoothing="none", face_crops=True
    )
    table = pipeline(path)
    model = FaceMAEForAffect.from_pretrained(tiny_face_mae_affect_dir).eval()
    inputs = face_image_processor(model.config)(images=[Image.open(path).convert("RGB")], return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    expected = np.concatenate([outputs.au_logits.sigmoid()[0], outputs.expr_logits.softmax(-1)[0], outputs.va[0]])
    np.testing.assert_allclose(predictions(table)[0], expected, rtol=0, atol=1e-6)
    assert table.loc[0, ["face_x", "face_y", "face_w", "face_h"]].tolist() == [0, 0, 112, 112]


def test_bfloat16_stays_close_to_float32(synth, tiny_face_mae_affect_dir, pipeline):
    video = synth[0] / "videos" / "synth_002.mp4"
    bf16 = AffectPipeline.from_pretrained(tiny_face_mae_affect_dir, device="cpu", dtype="bfloat16", smoothing="none")
    assert bf16.dtype == torch.bfloat16
    np.testing.assert_allclose(predictions(bf16(video)), predictions(pipeline(video)), atol=0.02)


def test_tmf_pipeline_with_and_without_audio(tmp_path, synth, tiny_tmf_dir):
    pipeline = AffectPipeline.from_pretrained(tiny_tmf_dir, device="cpu", dtype="float32")
    assert pipeline.is_fusion and sorted(pipeline.audio_extractors) == ["hubert", "vggish"]
    assert pipeline.audio_extractors["hubert"].layer == 1  # extractor options come from config.backbones
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the SynthAffect video has audio: no warning
        table = pipeline(synth[0] / "videos" / "synth_000.mp4")
    expected_columns = [*TABLE_COLUMNS[:9], *EXPR.labels, "expression", *VA.labels]
    assert list(table.columns) == expected_columns and len(table) == 40  # 40 frames = 4 clips of 12, padded
    assert not table[[*EXPR.labels, *VA.labels]].isna().any(axis=None)

    placements = [Placement(160, 120, 110, 0)] * 15
    silent = write_video(tmp_path / "silent.mp4", draw_scene(15, placements))
    with pytest.warns(MissingAudioWarning, match="silent.mp4.*hubert, vggish"):
        table = pipeline(silent)
    assert len(table) == 15 and not table[[*EXPR.labels, *VA.labels]].isna().any(axis=None)
    # Audio is used when there is some: the same frames with a tone give other predictions.
    with_audio = write_video(tmp_path / "tone.mp4", draw_scene(15, placements), audio_seconds=0.6)
    assert not np.allclose(pipeline(with_audio)[list(VA.labels)], table[list(VA.labels)])


def test_tmf_checkpoint_must_name_its_backbones(tmp_path, tiny_tmf_dir):
    model = TMFForAffect.from_pretrained(tiny_tmf_dir)
    model.config.backbones = {"mae": model.config.backbones["mae"]}
    model.save_pretrained(tmp_path / "tmf")
    with pytest.raises(InputError, match=r"\['hubert', 'vggish'\]"):
        AffectPipeline.from_pretrained(tmp_path / "tmf", device="cpu")
    with pytest.raises(InputError, match="no-such-model"):
        AffectPipeline.from_pretrained(tmp_path / "no-such-model", device="cpu")


def test_inference_imports_no_training_code():
    """`modeling_abaw.inference` works where neither Accelerate nor datasets is installed, and never loads the
    training stages."""
    script = (
        "import sys\n"
        "sys.modules['accelerate'] = sys.modules['datasets'] = None  # as if not installed: importing them fails\n"
        "import modeling_abaw.inference, modeling_abaw.inference.figures, modeling_abaw.media\n"
        "print(sorted(name for name in sys.modules if name.startswith('modeling_abaw.train')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@torch.no_grad()
def _tiled_reference(model, columns, tasks, starts, clip_length, num_frames):
    """Each clip run alone (padded past the video's end), its predictions summed per frame and counted."""
    sums, counts = {}, np.zeros(num_frames)
    for start in starts:
        stop = min(start + clip_length, num_frames)
        pad = clip_length - (stop - start)
        clip = {name: torch.from_numpy(np.pad(values[start:stop], [(0, pad)] + [(0, 0)] * (values.ndim - 1)))[None]
                for name, values in columns.items()}  # fmt: skip
        outputs = model(**tmf_inputs(clip, model.config), attention_mask=clip["attention_mask"])
        for name, values in affect_predictions(outputs, tasks).items():
            sums.setdefault(name, np.zeros((num_frames, values.shape[-1])))[start:stop] += values[
                0, : stop - start
            ].numpy()
        counts[start:stop] += 1
    return sums, counts


class FrameAudio:
    """Audio features already aligned to frames, read as `ClipFusion` reads `StreamedAudio`."""

    def __init__(self, columns):
        self.columns, self.released = columns, 0

    def frames(self, first, stop):
        assert first >= self.released  # ClipFusion never asks again for frames it released
        return {name: values[first:stop] for name, values in self.columns.items()}

    def release(self, consumer, frame):
        self.released = frame


def _fuse_in_batches_of_keyframes(pipeline, visual, has_face, audio, batch=7):
    """ClipFusion fed the frames' visual features a few at a time, as the encoder gives them."""
    frames = np.flatnonzero(has_face)
    sources = FrameSources.build(has_face, frames, np.arange(len(has_face)) / 30)
    fusion = ClipFusion(
        pipeline.model, pipeline.tasks, sources, FrameAudio(audio), clip_stride=pipeline.clip_stride, batch_size=2
    )
    for first in range(0, len(frames), batch):
        fusion.add(frames[first : first + batch], {"features": visual[frames[first : first + batch]]})
    return fusion.finish()


# 30 frames in clips of 12: tiles start at 0, 12, 24; a stride of 5 starts clips until one reaches the end.
@pytest.mark.parametrize("stride, starts", [(None, [0, 12, 24]), (12, [0, 12, 24]), (5, [0, 5, 10, 15, 20])])
def test_tmf_clips_tile_or_overlap_and_average(tiny_tmf_dir, stride, starts):
    pipeline = AffectPipeline.from_pretrained(tiny_tmf_dir, device="cpu", dtype="float32", clip_stride=stride)
    rng = np.random.default_rng(0)
    num_frames = 30
    visual = rng.standard_normal((num_frames, 32)).astype(np.float32)
    has_face = np.ones(num_frames, bool)
    audio = {}
    for name, size in (("hubert", 16), ("vggish", 8)):
        audio[name], audio[f"{name}_mask"] = rng.standard_normal((num_frames, size)).astype(np.float32), np.ones(30)
    predictions = _fuse_in_batches_of_keyframes(pipeline, visual, has_face, audio)
    columns = {"mae": visual, **audio, "attention_mask": np.ones(num_frames, np.int64)}
    sums, counts = _tiled_reference(pipeline.model, columns, pipeline.tasks, starts, 12, num_frames)
    for name, values in predictions.items():
        if stride in (None, 12):  # tiling: every frame's prediction is its one clip's, exactly
            np.testing.assert_array_equal(values, sums[name].astype(np.float32))
        else:
            assert counts.max() > 1
            np.testing.assert_allclose(values, sums[name] / counts[:, None], rtol=0, atol=1e-6)


def test_one_haar_detector_serves_several_threads_at_once(synth):
    """Analyses served at once (the Space) share one detector: OpenCV's cascade keeps per-call scratch state, which
    threads sharing one classifier corrupted (range-check and scale-index assertion errors)."""
    frame = next(open_media(synth[0] / "videos" / "synth_000.mp4").frames()).image
    detector = HaarFaceDetector()
    expected = detector(frame)

    def detect(seed):
        rng = np.random.default_rng(seed)
        for _ in range(300):
            top, left = rng.integers(0, 60, 2)
            crop = frame[top : top + rng.integers(120, 180), left : left + rng.integers(160, 260)]
            detector(np.ascontiguousarray(crop), min_size=float(rng.integers(0, 40)))
        return detector(frame)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(detect, [1, 2]))
    assert all(result == expected for result in results)
