"""Landmark face detection (BlazeFace), alignment on landmarks, the Haar fallback, and identity-stable tracking."""

import dataclasses
import subprocess
import sys

import cv2
import numpy as np
import pytest

from modeling_abaw.alignment import ALIGNED_TEMPLATE, align_face, aligned_square, alignment_transform, face_roll
from modeling_abaw.data.synth import Placement, draw_face, paste_face, random_background, random_identity
from modeling_abaw.data.synth.faces import rest_landmarks
from modeling_abaw.errors import InputError
from modeling_abaw.inference import Box, FaceDetector, FaceTracker, HaarFaceDetector, face_detector
from modeling_abaw.inference.blazeface import BlazeFaceDetector
from modeling_abaw.tasks import AU

NEUTRAL = np.zeros(len(AU.labels), np.float32)


@pytest.fixture(scope="module")
def blazeface():
    return BlazeFaceDetector()


def scene(placements, seed=1, size=(320, 240), squeeze=1.0):
    """One frame with a face (identity `seed + i`) at each placement; `squeeze` < 1 narrows the faces as a head
    turned away does (foreshortened, pushed to one side of their square)."""
    rng = np.random.default_rng(seed)
    frame = random_background(rng, *size)
    for index, placement in enumerate(placements):
        rgb, alpha = draw_face(random_identity(np.random.default_rng(seed + index)), NEUTRAL, int(placement.size))
        if squeeze != 1.0:
            rgb, alpha = narrowed(rgb, squeeze), narrowed(alpha, squeeze)
        paste_face(frame, rgb, alpha, placement)
    return frame


def narrowed(image, squeeze):
    """The image squeezed horizontally by `squeeze`, on the left of its (zero-padded) square."""
    width = round(image.shape[1] * squeeze)
    narrow = cv2.resize(image, (width, image.shape[0]), interpolation=cv2.INTER_AREA)
    return np.pad(narrow, [(0, 0), (0, image.shape[1] - width)] + [(0, 0)] * (image.ndim - 2))


# -------------------------------------------------------------------------------------------------------- alignment


def average_eyes(seed):
    """A SynthAffect identity with the average eye spacing."""
    return dataclasses.replace(random_identity(np.random.default_rng(seed)), eye_spacing=1.0)


def test_template_is_the_average_synthaffect_face_at_rest():
    np.testing.assert_allclose(rest_landmarks(average_eyes(0)), ALIGNED_TEMPLATE)


def test_alignment_transform_matches_a_hand_computed_one():
    # The template of a 100-pixel crop, turned 90 degrees counter-clockwise on screen: (x, y) -> (y, -x).
    crop = ALIGNED_TEMPLATE * 100
    frame = np.stack([crop[:, 1], -crop[:, 0]], axis=1)
    # frame -> crop undoes it: (u, v) -> (-v, u)
    np.testing.assert_allclose(alignment_transform(frame, 100), [[0, -1, 0], [1, 0, 0]], atol=1e-12)
    square = aligned_square(frame)
    np.testing.assert_allclose(square, (50, -50, 100, 90), atol=1e-9)  # the crop's centre (50, 50) -> (50, -50)
    assert face_roll(frame) == pytest.approx(90)
    # Scaled by 2 and shifted: from four exact points the least-squares fit is exact
    np.testing.assert_allclose(alignment_transform(crop * 2 + [7, -3], 100), [[0.5, 0, -3.5], [0, 0.5, 1.5]])


def test_align_face_recovers_the_rendering_of_a_placed_face():
    identity = average_eyes(3)
    rgb, alpha = draw_face(identity, NEUTRAL, 112)
    frame = random_background(np.random.default_rng(4), 320, 240)
    placement = Placement(150, 125, 112, 17)
    paste_face(frame, rgb, alpha, placement)
    crop = align_face(frame, placement.to_frame_points(rest_landmarks(identity)), 112).astype(float)
    inside = alpha > 0.99
    assert np.abs(crop - rgb)[inside].mean() < 6  # only resampling blur apart
    assert np.abs(np.roll(crop, 4, axis=1) - rgb)[inside].mean() > 2 * np.abs(crop - rgb)[inside].mean()


# ---------------------------------------------------------------------------------------------------- the detector


def test_blazeface_finds_upright_and_tilted_faces_with_their_landmarks(blazeface):
    for angle in (0, 25, 45):
        placement = Placement(160, 120, 130, angle)
        [box] = blazeface(scene([placement]))
        square = aligned_square(np.asarray(box.landmarks))
        assert abs(face_roll(np.asarray(box.landmarks)) - angle) < 5, angle
        assert np.hypot(square.cx - placement.cx, square.cy - placement.cy) < 0.08 * placement.size
        assert abs(square.size / placement.size - 1) < 0.15 and 0.8 < box.score <= 1
    assert HaarFaceDetector()(scene([Placement(160, 120, 130, 45)])) == []  # the frontal cascade's limit


def test_blazeface_finds_a_turned_face_and_nothing_in_an_empty_room(blazeface):
    [box] = blazeface(scene([Placement(160, 120, 130, 0)], squeeze=0.5))  # a head turned well to one side
    right_eye, left_eye, nose, mouth = np.asarray(box.landmarks)
    assert right_eye[0] < nose[0] < left_eye[0] and nose[1] < mouth[1]
    assert HaarFaceDetector()(scene([Placement(160, 120, 130, 0)], squeeze=0.5)) == []
    assert blazeface(scene([])) == []
    assert blazeface(np.zeros((240, 320, 3), np.uint8)) == []


def test_small_faces_are_found_in_tiles(blazeface):
    """A face box of 5% of the frame's side is ~10 pixels of the model's input in one pass, too small: the tiles
    enlarge it. The pipeline detects on frames shrunk to 320 pixels, where the frontal cascade's 24-pixel minimum
    is 7.5%."""
    frame = cv2.resize(scene([Placement(420, 150, 45, 0)], size=(640, 480)), (320, 240), interpolation=cv2.INTER_AREA)
    [box] = blazeface(frame)
    assert np.hypot(box.centre[0] - 210, box.centre[1] - 75) < 8 and 10 < box.w < 20
    assert blazeface(frame, min_size=60) == []  # a search for larger faces skips the tiles and finds nothing
    assert HaarFaceDetector()(frame) == []


def test_blazeface_boxes_are_in_the_image_pixels_and_respect_the_size_bounds(blazeface):
    placement = Placement(100, 150, 90, 0)
    frame = scene([placement], size=(480, 270))  # letterboxed: not square
    [box] = blazeface(frame)
    assert np.hypot(*(np.mean(box.landmarks, axis=0) - [placement.cx, placement.cy])) < 0.15 * placement.size
    assert blazeface(frame, max_size=box.w / 2) == [] and blazeface(frame, min_size=box.w * 2) == []
    half = blazeface(frame[::2, ::2].copy())[0]
    np.testing.assert_allclose(np.asarray(half.landmarks) * 2, box.landmarks, atol=0.05 * placement.size)


def test_haar_is_the_fallback_without_litert():
    assert isinstance(face_detector(), BlazeFaceDetector) and isinstance(face_detector("haar"), HaarFaceDetector)
    with pytest.raises(InputError, match="mtcnn"):
        face_detector("mtcnn")
    code = (
        "import sys; sys.modules['ai_edge_litert'] = None\n"  # as if not installed: its import fails
        "from modeling_abaw.inference import face_detector\n"
        "from modeling_abaw.errors import InputError\n"
        "print(type(face_detector()).__name__)\n"
        "try:\n    face_detector('blazeface')\nexcept InputError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    detector, message = result.stdout.splitlines()
    assert detector == "HaarFaceDetector" and "pip install ai-edge-litert" in message


# ------------------------------------------------------------------------------------------------------ tracking


class ScriptedDetector(FaceDetector):
    """Returns the boxes scripted for each frame (full scans) or those of them inside the searched window."""

    def __init__(self, script):
        self.script, self.frame = script, -1

    def __call__(self, image, min_size=0, max_size=float("inf")):
        return list(self.script[self.frame])


def test_tracks_keep_their_identities_when_two_faces_cross():
    """Two faces walk past each other; the nearer (larger) one hides the other for a few frames. Matching boxes to
    where each track is expected (its motion carried on) keeps each face on its own track, where matching to the
    last box swaps them or starts new ones."""
    frames, script = 40, []
    for t in range(frames):
        near = Box(20 + 6 * t, 60, 64, 64)  # left to right
        far = Box(250 - 6 * t, 66, 50, 50)  # right to left
        hidden = abs(near.centre[0] - far.centre[0]) < 30  # behind the near face
        script.append([near] if hidden else [far, near] if t % 2 else [near, far])
    detector = ScriptedDetector(script)
    tracker = FaceTracker(detector, detect_every=1, max_gap=8)
    for t in range(frames):
        detector.frame = t
        tracker.update(np.zeros((240, 320, 3), np.uint8))
    assert len(tracker.tracks) == 2  # the hidden face's track carried on across its gap
    near, far = tracker.faces(min_frames=5)
    assert sorted(near.boxes) == list(range(frames)) and all(box.w == 64 for box in near.boxes.values())
    assert all(box.w == 50 for box in far.boxes.values())
    moving_left = [box.x for _, box in sorted(far.boxes.items())]
    assert moving_left == sorted(moving_left, reverse=True) and len(far.boxes) >= frames - 12


def test_rendered_faces_crossing_keep_their_numbers(blazeface):
    """The same with drawn faces and the real detector, through the tracker's window searches."""
    tracker = FaceTracker(blazeface, detect_every=10)
    for t in range(24):
        tracker.update(scene([Placement(250 - 8 * t, 110, 70, 0), Placement(70 + 8 * t, 125, 95, 0)], seed=5))
    faces = tracker.faces()
    assert len(tracker.tracks) == len(faces) == 2
    big, small = faces  # by prominence: the nearer face first
    for face, start, step in ((big, 70, 8), (small, 250, -8)):
        for t, box in face.boxes.items():
            assert abs(box.centre[0] - (start + step * t)) < 25, (t, box)


# ------------------------------------------------------------------------------------------------- abaw predict


def test_predict_writes_roll_and_landmarks_and_runs_haar_on_request(
    tiny_synthaffect, tiny_face_mae_affect_dir, tmp_path
):
    import pandas as pd

    from modeling_abaw.alignment import LANDMARKS
    from modeling_abaw.cli import main

    video = tiny_synthaffect / "videos" / "synth_000.mp4"
    truth = pd.read_csv(tiny_synthaffect / "face_tracks" / "synth_000.csv")
    common = ["predict", str(video), "--model", str(tiny_face_mae_affect_dir)]
    assert main([*common, "--output", str(tmp_path / "aligned"), "--landmarks"]) == 0
    aligned = pd.read_csv(tmp_path / "aligned" / "synth_000.csv")
    columns = [f"{name}_{axis}" for name in LANDMARKS for axis in "xy"]
    assert list(aligned.columns[8:17]) == ["face_roll", *columns]
    found = (aligned["has_face"] == 1) & (truth["visible"] == 1)
    assert found.mean() > 0.85
    assert (aligned.loc[found, "face_roll"] - truth.loc[found, "angle"]).abs().mean() < 3
    offsets = (aligned.loc[found, columns].to_numpy() - truth.loc[found, columns].to_numpy()).reshape(-1, 4, 2)
    landmark_error = np.hypot(offsets[..., 0], offsets[..., 1])
    assert np.median(landmark_error) < 0.05 * truth["size"].mean()
    assert main([*common, "--output", str(tmp_path / "haar"), "--detector", "haar"]) == 0
    haar = pd.read_csv(tmp_path / "haar" / "synth_000.csv")
    assert haar["has_face"].mean() > 0.85 and haar["face_roll"].isna().all() and columns[0] not in haar


def test_a_tracked_face_found_much_less_surely_is_left_out_as_covered():
    class Scored(ScriptedDetector):
        occluded_score_ratio = 0.8

    face = Box(100, 80, 60, 60)
    scores = [0.9] * 8 + [0.62, 0.65] + [0.88] * 5  # a hand passes over the face at frames 8 and 9
    detector = Scored([[face._replace(score=score)] for score in scores])
    tracker = FaceTracker(detector, detect_every=1)
    for t in range(len(scores)):
        detector.frame = t
        tracker.update(np.zeros((240, 320, 3), np.uint8))
    [track] = tracker.tracks  # the covered frames neither extend the track nor start another
    assert sorted(track.boxes) == [*range(8), *range(10, 15)]
    plain = FaceTracker(ScriptedDetector(detector.script), detect_every=1)  # Haar-like scores: no such rule
    for t in range(len(scores)):
        plain.detector.frame = t
        plain.update(np.zeros((240, 320, 3), np.uint8))
    assert sorted(plain.tracks[0].boxes) == list(range(15))


def test_a_track_that_starts_covered_loses_those_frames_once_it_has_a_history():
    class Scored(ScriptedDetector):
        occluded_score_ratio = 0.8

    scores = [0.6, 0.62] + [0.9] * 12  # the video opens with a hand over the face
    detector = Scored([[Box(100, 80, 60, 60, score)] for score in scores])
    tracker = FaceTracker(detector, detect_every=1)
    for t in range(len(scores)):
        detector.frame = t
        tracker.update(np.zeros((240, 320, 3), np.uint8))
    assert sorted(tracker.tracks[0].boxes) == list(range(14))  # no history to judge frames 0 and 1 by, then
    [face] = tracker.faces()
    assert sorted(face.boxes) == list(range(2, 14))


def test_a_tracked_face_with_landmarks_out_of_their_layout_is_left_out_as_covered():
    """The face turns and grows frame by frame (its layout, in its aligned crop, stays); at frames 8 and 9 a hand
    hides its nose and mouth, and the detector guesses them 5 % of the crop's side out of place (the nose towards the
    hand, the mouth lower)."""

    class Guessing(ScriptedDetector):
        occluded_layout_change = 0.02

    def face(t, guessed=False):
        layout = ALIGNED_TEMPLATE + ([[0, 0], [0, 0], [0.05, 0], [0, 0.05]] if guessed else 0)
        angle, side = np.radians(3 * t), 150 + 4 * t
        rotation = side * np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        points = (layout - 0.5) @ rotation.T + [160, 120]
        return Box(*(points.min(0) - 20), *(np.ptp(points, 0) + 40), 0.9, tuple(map(tuple, points)))

    detector = Guessing([[face(t, guessed=t in (8, 9))] for t in range(15)])
    tracker = FaceTracker(detector, detect_every=1)
    for t in range(15):
        detector.frame = t
        tracker.update(np.zeros((240, 320, 3), np.uint8))
    [track] = tracker.tracks
    assert sorted(track.boxes) == [*range(8), *range(10, 15)]
