"""SynthAffect: layout and formats, determinism, labels that the pixels and the voice really carry, raw videos a
face detector can work on, and the `abaw synth` command."""

import json

import av
import cv2
import numpy as np
import pytest

from modeling_abaw.cli import main
from modeling_abaw.data import SPLIT_DIRS
from modeling_abaw.data.synth import (
    PROTOTYPES,
    au_vector,
    draw_face,
    generate_synthaffect,
    random_identity,
    simulate_affect,
    synthesize_speech,
)
from modeling_abaw.errors import InputError
from modeling_abaw.tasks import AU, EXPR, TASKS, VA

FRAMES = 60


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "synthaffect"
    return generate_synthaffect(root, num_videos=4, num_frames=FRAMES, seed=0)


def read_annotation(summary, task, name):
    split = next(split for split, names in summary.splits.items() if name in names)
    path = summary.root / "annotations" / TASKS[task].challenge_dir / split / f"{name}.txt"
    return path.read_text().splitlines()


def read_crop(summary, name, frame):
    return cv2.imread(str(summary.root / "cropped_aligned" / name / f"{frame:05d}.jpg"))[..., ::-1]


def read_track(summary, name):
    """(T, 14) frame, cx, cy, size, angle, visible, then the landmarks' x and y."""
    return np.loadtxt(summary.root / "face_tracks" / f"{name}.csv", delimiter=",", skiprows=1)


def decode_video(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def names(summary):
    return [name for split in SPLIT_DIRS.values() for name in summary.splits[split]]


# ---------------------------------------------------------------------------------------------- layout


def test_layout_splits_and_two_person_video(synth):
    root = synth.root
    assert synth.videos == ["synth_000", "synth_001", "synth_002", "synth_003"]
    assert synth.two_person_video == "synth_001"
    assert synth.splits == {
        "Train_Set": ["synth_000", "synth_001_left", "synth_001_right"],
        "Validation_Set": ["synth_002"],
        "Test_Set": ["synth_003"],
    }
    assert sorted(p.name for p in (root / "videos").iterdir()) == [f"{v}.mp4" for v in synth.videos]
    assert sorted(p.name for p in (root / "cropped_aligned").iterdir()) == sorted(names(synth))
    for task in TASKS.values():
        assert (root / "test_set" / task.test_list_file).read_text() == "synth_003\n"
    readme = (root / "README.txt").read_text()
    assert "SANITY" in readme and "NOT a benchmark" in readme
    info = json.loads((root / "synthaffect.json").read_text())
    assert info["complete"] and info["parameters"]["seed"] == 0 and info["parameters"]["num_frames"] == FRAMES
    assert not list(root.rglob(".*")), "temporary files left behind"


@pytest.mark.parametrize("task", list(TASKS))
def test_annotation_files_have_header_one_line_per_frame_and_gaps(synth, task):
    spec = TASKS[task]
    marker = ",".join([f"{spec.invalid_value:g}"] * spec.num_value_columns)
    for name in names(synth):
        lines = read_annotation(synth, task, name)
        assert lines[0] == ",".join(spec.labels)
        assert len(lines) == FRAMES + 1
        rows = lines[1:]
        assert 1 <= rows.count(marker) < FRAMES // 2, f"{name}: expected a few short label gaps"
        values = np.array([[float(v) for v in row.split(",")] for row in rows if row != marker])
        if spec is AU:
            assert values.shape[1] == 12 and set(np.unique(values)) <= {0, 1}
            assert all("." not in row for row in rows)  # ints, as in the release
        elif spec is EXPR:
            assert values.shape[1] == 1 and set(np.unique(values)) <= set(range(len(EXPR.labels)))
        else:
            assert values.shape[1] == 2 and np.all(np.abs(values) <= 1)


def test_crops_are_112_pixel_jpegs_except_hidden_frames(synth):
    for name in names(synth):
        folder = synth.root / "cropped_aligned" / name
        missing = synth.missing_images[name]
        assert 1 <= len(missing) <= 8
        expected = [f"{i:05d}.jpg" for i in range(1, FRAMES + 1) if i not in missing]
        assert sorted(p.name for p in folder.iterdir()) == expected
        assert read_crop(synth, name, int(expected[0][:5])).shape == (112, 112, 3)
        visible = read_track(synth, name)[:, 5]
        assert [i + 1 for i in np.flatnonzero(visible == 0)] == missing


def test_mp4_has_every_frame_and_an_aac_voice(synth):
    path = synth.root / "videos" / "synth_000.mp4"
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert (video.width, video.height) == (320, 240) and audio.sample_rate == 16000
        samples = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    assert len(decode_video(path)) == FRAMES
    assert abs(samples.shape[1] / 16000 - FRAMES / 30) < 0.2
    assert 0.01 < np.sqrt(np.mean(samples**2)) < 0.5


def test_crops_are_cut_from_the_raw_frames_where_the_track_says(synth):
    """An aligner re-cutting the decoded raw frame at the recorded placement gets the stored crop back."""
    frames = decode_video(synth.root / "videos" / "synth_000.mp4")
    track = read_track(synth, "synth_000")
    for i in np.flatnonzero(track[:, 5])[::15]:
        _, cx, cy, size, angle, _ = track[i, :6]
        to_frame = cv2.getRotationMatrix2D((0, 0), angle, size)  # face units -> pixels, as Placement.to_frame
        to_frame[:, 2] = [cx, cy] - to_frame[:, :2] @ [0.5, 0.5]
        recut = cv2.warpAffine(frames[i], 112 * cv2.invertAffineTransform(to_frame), (112, 112))
        stored = read_crop(synth, "synth_000", i + 1).astype(float)
        assert np.abs(recut - stored).mean() < 8
        assert np.abs(recut - stored).mean() < np.abs(np.roll(recut, 6, axis=0) - stored).mean()


# ---------------------------------------------------------------------------------------------- determinism


def test_same_seed_same_dataset_other_seed_other_dataset(tmp_path):
    first, again, other = (
        generate_synthaffect(tmp_path / name, num_videos=2, num_frames=12, seed=seed, write_videos=False)
        for name, seed in (("first", 0), ("again", 0), ("other", 1))
    )
    assert again.splits == first.splits and again.missing_images == first.missing_images
    for name in names(first):
        assert all(read_annotation(again, task, name) == read_annotation(first, task, name) for task in TASKS)
        assert read_annotation(other, "va", name) != read_annotation(first, "va", name)
        frames = [p.name for p in (first.root / "cropped_aligned" / name).iterdir()]
        assert sorted(frames) == sorted(p.name for p in (again.root / "cropped_aligned" / name).iterdir())
        for frame in frames:
            path = f"cropped_aligned/{name}/{frame}"
            assert (again.root / path).read_bytes() == (first.root / path).read_bytes()
            if (other.root / path).exists():
                assert not np.array_equal(cv2.imread(str(other.root / path)), cv2.imread(str(first.root / path)))


# ---------------------------------------------------------------------------------------------- labels <-> pixels


# Regions of an aligned face, (x0, y0, x1, y1) in face units (the crop is the unit square).
BROWS, EYES, MOUTH = (0.25, 0.2, 0.75, 0.37), (0.3, 0.38, 0.7, 0.48), (0.33, 0.6, 0.67, 0.84)
INNER_BROW, OUTER_BROW = (0.445, 0.25, 0.47, 0.41), (0.31, 0.25, 0.35, 0.4)  # left brow
LIP_CORNER, LIP_MIDDLE = (0.40, 0.62, 0.43, 0.78), (0.48, 0.63, 0.52, 0.78)  # left corner, middle of the mouth
MOUTH_CENTRE = (0.4, 0.64, 0.6, 0.78)


def region(image, box):
    size = image.shape[0]
    return image[round(box[1] * size) : round(box[3] * size), round(box[0] * size) : round(box[2] * size)]


def render(identity, **intensities):
    """The drawn face over a grey background, at crop size."""
    rgb, alpha = draw_face(identity, au_vector(**intensities), size=112)
    return rgb * alpha[..., None] + 128 * (1 - alpha[..., None])


def darkest_row(image, box):
    """Vertical position (face units) of the darkest row of a box: where a brow or the lip line is."""
    return box[1] + (np.argmin(region(image.mean(axis=2), box).mean(axis=1)) + 0.5) / image.shape[0]


def mouth_opening(image, box=MOUTH):
    """Fraction of a box much darker than the cheek: the open mouth's interior."""
    gray = image.mean(axis=2)
    return float(np.mean(region(gray, box) < 0.55 * np.median(region(gray, (0.3, 0.5, 0.4, 0.6)))))


def eye_white(image):
    """Fraction of very bright pixels around the eyes: how open they are."""
    return float(np.mean(region(image.min(axis=2), EYES) > 180))


def lip_pixels(image, identity, box=MOUTH):
    """Mask of the pixels closer to the lip colour than to the skin colour."""
    pixels = region(image.astype(float), box)
    return np.linalg.norm(pixels - identity.lips, axis=2) < np.linalg.norm(pixels - identity.skin, axis=2)


def lip_top(image, identity):
    """Vertical position (face units) of the upper lip's top edge in the middle of the mouth."""
    rows = np.flatnonzero(lip_pixels(image, identity, LIP_MIDDLE).mean(axis=1) > 0.5)
    return LIP_MIDDLE[1] + rows[0] / image.shape[0]


# (AU, what it changes, +1 when the AU must increase it / -1 decrease it, a region it must leave alone):
# each AU moves its own region, as on a real face.
AU_EFFECTS = [
    ("AU1", lambda im, _: darkest_row(im, INNER_BROW), -1, MOUTH),  # inner brow up
    ("AU2", lambda im, _: darkest_row(im, OUTER_BROW), -1, MOUTH),  # outer brow up
    ("AU4", lambda im, _: darkest_row(im, INNER_BROW), +1, MOUTH),  # brow down
    ("AU6", lambda im, _: eye_white(im), -1, BROWS),  # cheeks push the lower lid up
    ("AU7", lambda im, _: eye_white(im), -1, BROWS),  # lids tighten
    ("AU10", lip_top, -1, BROWS),  # upper lip up
    ("AU12", lambda im, _: darkest_row(im, LIP_CORNER), -1, BROWS),  # lip corners up
    ("AU15", lambda im, _: darkest_row(im, LIP_CORNER), +1, BROWS),  # lip corners down
    ("AU23", lambda im, face: float(lip_pixels(im, face).mean()), -1, BROWS),  # lips thinner
    ("AU24", lambda im, face: float(lip_pixels(im, face).mean()), -1, BROWS),  # lips pressed, mouth narrower
    ("AU25", lambda im, _: mouth_opening(im), +1, BROWS),  # lips part
    ("AU26", lambda im, _: mouth_opening(im), +1, BROWS),  # jaw drop (with the lips parted)
]


@pytest.mark.parametrize("name,measure,sign,untouched", AU_EFFECTS, ids=[effect[0] for effect in AU_EFFECTS])
def test_each_action_unit_moves_its_region(name, measure, sign, untouched):
    for seed in range(4):
        identity = random_identity(np.random.default_rng(seed))
        base = {"AU25": 0.6} if name == "AU26" else {}
        off, on = render(identity, **base), render(identity, **base, **{name: 1.0})
        change = sign * (measure(on, identity) - measure(off, identity))
        assert change > 0, f"{name} does not move its region (identity {seed}): {change:.3f}"
        assert np.abs(region(on, untouched) - region(off, untouched)).mean() < 0.5, f"{name} (identity {seed})"


def test_mouth_of_the_crops_opens_when_the_labels_say_so(synth):
    """End to end: the written AU25/AU26 labels line up with the written crops, frame by frame."""
    checked = 0
    for name in names(synth):
        rows = read_annotation(synth, "au", name)[1:]
        opening = {True: [], False: []}
        for frame, row in enumerate(rows, start=1):
            values = row.split(",")
            if values[0] != "-1" and frame not in synth.missing_images[name]:
                is_open = values[AU.labels.index("AU25")] == "1" or values[AU.labels.index("AU26")] == "1"
                opening[is_open].append(mouth_opening(read_crop(synth, name, frame), MOUTH_CENTRE))
        if opening[True] and opening[False]:
            # how often a frame labelled open shows a more open mouth than one labelled closed (ROC AUC)
            pairs = np.subtract.outer(opening[True], opening[False])
            auc = np.mean(pairs > 0) + 0.5 * np.mean(pairs == 0)
            assert auc > 0.75, f"{name}: AUC {auc:.2f}"
            checked += 1
    assert checked >= 3


def test_expressions_are_their_prototype_action_units():
    track = simulate_affect(3000, 30, np.random.default_rng(0))
    au, expr = track.au, track.expr
    for expression, alternatives in PROTOTYPES.items():
        label = EXPR.labels.index(expression)
        assert np.sum(expr == label) > 50, expression
        for core in set.intersection(*map(set, alternatives)):
            assert au[expr == label, AU.labels.index(core)].all(), (expression, core)
    neutral, happy = expr == EXPR.labels.index("Neutral"), expr == EXPR.labels.index("Happiness")
    assert track.expression_intensity[neutral].max() < 0.65
    assert track.va[happy, 0].mean() > 0.4 > track.va[neutral, 0].mean() + 0.2
    sad = expr == EXPR.labels.index("Sadness")
    assert track.va[sad, 0].mean() < -0.3 and track.va[sad, 1].mean() < -0.1
    assert np.all(np.abs(track.va) <= 1)
    assert 0.2 < track.hidden_va[:, 1].std() < 0.4  # the arousal the face does not show


def test_written_expressions_agree_with_written_action_units(synth):
    for name in names(synth):
        aus, exprs = read_annotation(synth, "au", name)[1:], read_annotation(synth, "expr", name)[1:]
        for au_row, expr_row in zip(aus, exprs):
            if au_row.startswith("-1") or expr_row == "-1":
                continue
            alternatives = PROTOTYPES.get(EXPR.labels[int(expr_row)])
            if alternatives:  # the six basic expressions and Neutral; "Other" is any unusual mix
                active = {a for a, v in zip(AU.labels, au_row.split(",")) if v == "1"}
                assert set.intersection(*map(set, alternatives)) <= active, (name, expr_row, au_row)


# ---------------------------------------------------------------------------------------------- audio


def pitch_hz(audio, sample_rate):
    """Median f0 of the louder 40 ms windows, from the autocorrelation peak between 60 and 500 Hz."""
    windows = np.lib.stride_tricks.sliding_window_view(audio, 640)[::320]
    rms = np.sqrt(np.mean(windows**2, axis=1))
    estimates = []
    for window in windows[rms > 0.5 * rms.max()]:
        corr = np.correlate(window, window, "full")[639:]
        lag = np.argmax(corr[sample_rate // 500 : sample_rate // 60]) + sample_rate // 500
        estimates.append(sample_rate / lag)
    return float(np.median(estimates))


def spectral_centroid(audio, sample_rate):
    """Power-weighted mean frequency: where the voice's energy is."""
    power = np.abs(np.fft.rfft(audio)) ** 2
    return float(np.sum(np.fft.rfftfreq(len(audio), 1 / sample_rate) * power) / np.sum(power))


def test_voice_carries_arousal_and_valence():
    def voice(valence, arousal):
        return synthesize_speech(np.tile([valence, arousal], (90, 1)), 30, 16000, np.random.default_rng(0), 120)

    calm, excited = voice(0, -0.8), voice(0, 0.8)
    assert np.sqrt(np.mean(excited**2)) > 2 * np.sqrt(np.mean(calm**2))  # louder
    assert pitch_hz(excited, 16000) > 1.5 * pitch_hz(calm, 16000)  # higher
    assert spectral_centroid(voice(0.8, 0), 16000) > 1.3 * spectral_centroid(voice(-0.8, 0), 16000)  # brighter
    assert voice(0, 0).dtype == np.float32 and len(voice(0, 0)) == 3 * 16000


# ---------------------------------------------------------------------------------------------- face detection


def test_haar_cascade_finds_the_drawn_faces_in_the_raw_videos(synth):
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    for video in synth.videos:
        frames = decode_video(synth.root / "videos" / f"{video}.mp4")
        subjects = [f"{video}_left", f"{video}_right"] if video == synth.two_person_video else [video]
        for name in subjects:
            track = read_track(synth, name)
            found = []
            for i in np.flatnonzero(track[:, 5])[::3]:
                boxes = cascade.detectMultiScale(cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY), 1.1, 5)
                _, cx, cy, size, _, _ = track[i, :6]
                found.append(
                    any(
                        np.hypot(x + w / 2 - cx, y + h / 2 - cy) < 0.2 * size and 0.4 < w / size < 1.1
                        for x, y, w, h in boxes
                    )
                )
            assert np.mean(found) >= 0.8, f"{name}: face found in {np.mean(found):.0%} of frames"


# ---------------------------------------------------------------------------------------------- API and CLI


def test_cli_writes_the_dataset(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["synth", "--output", str(out), "--videos", "2", "--frames", "12", "--seed", "3", "--no-video"]) == 0
    printed = capsys.readouterr().out
    assert "Train_Set 1" in printed and "Validation_Set 1" in printed and str(out) in printed
    assert len(list((out / "annotations" / VA.challenge_dir / "Validation_Set").iterdir())) == 1
    assert not (out / "videos").exists() and not (out / "test_set").exists()
    # running again replaces the previous SynthAffect
    assert main(["synth", "--output", str(out), "--videos", "1", "--frames", "5", "--no-video"]) == 0
    assert sorted(p.name for p in (out / "cropped_aligned").iterdir()) == ["synth_000"]


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--videos", "0"),
        ("--frames", "0"),
        ("--seed", "-1"),
        ("--fps", "0"),
        ("--crop-size", "8"),
        ("--num-workers", "-1"),
    ],
)
def test_cli_bad_argument_is_one_line_error(tmp_path, capsys, flag, value):
    assert main(["synth", "--output", str(tmp_path / "x"), flag, value]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("abaw synth: error:") and "\n" not in error


def test_refuses_to_overwrite_a_folder_that_is_not_synthaffect(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a SynthAffect"):
        generate_synthaffect(tmp_path, num_videos=1, num_frames=5, write_videos=False)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
