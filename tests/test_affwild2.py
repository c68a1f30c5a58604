"""The Aff-Wild2 reader on small fake trees laid out like the ABAW5/6 release (see docs/CONVENTIONS.md)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modeling_abaw.data import (
    AffWild2,
    find_raw_video,
    find_test_list,
    frame_features,
    raw_video_name,
    read_annotation,
    read_test_list,
)
from modeling_abaw.errors import InputError
from modeling_abaw.io import atomic_path
from modeling_abaw.tasks import AU, EXPR, TASKS, VA

ANNOTATION_ROOT = "6th ABAW Annotations"


def write_annotation(path: Path, task: str, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [",".join(f"{value:g}" for value in np.atleast_1d(row)) for row in labels]
    path.write_text("\n".join([",".join(TASKS[task].labels), *rows]) + "\n")


def write_images(folder: Path, frames) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        Image.new("RGB", (8, 8), (frame * 20 % 256, 0, 0)).save(folder / f"{frame:05d}.jpg")


def random_labels(task: str, length: int, rng: np.random.Generator) -> np.ndarray:
    if task == "au":
        labels = rng.integers(0, 2, (length, 12)).astype(np.float32)
        labels[1] = AU.invalid_value  # a frame the annotators skipped
    elif task == "expr":
        labels = rng.integers(0, 8, length)
        labels[0] = EXPR.invalid_value
    else:
        labels = rng.uniform(-1, 1, (length, 2)).round(3).astype(np.float32)
        labels[-1] = VA.invalid_value
    return labels


# (task, split, video) -> number of annotated frames
ANNOTATIONS = {
    ("au", "train", "vidA"): 6,
    ("expr", "train", "vidA"): 4,  # shorter than the AU file of the same video
    ("au", "train", "vidB_left"): 3,
    ("au", "train", "vidB_right"): 3,
    ("va", "train", "vidB_left"): 3,
    ("expr", "train", "vidD"): 3,  # no face crops at all
    ("au", "validation", "vidC"): 5,
    ("expr", "validation", "vidC"): 5,
    ("va", "validation", "vidC"): 5,
    ("au", "test", "vidE"): 2,
}


def write_fake_affwild2(root: Path) -> dict[tuple[str, str, str], np.ndarray]:
    """A tiny release: gaps in the face crops, a second image root, a two-person video, a test list; returns labels."""
    rng = np.random.default_rng(0)
    split_dirs = {"train": "Train_Set", "validation": "Validation_Set", "test": "Test_Set"}
    labels = {}
    for (task, split, video), length in ANNOTATIONS.items():
        labels[task, split, video] = random_labels(task, length, rng)
        path = root / ANNOTATION_ROOT / TASKS[task].challenge_dir / split_dirs[split] / f"{video}.txt"
        write_annotation(path, task, labels[task, split, video])
    write_images(root / "cropped_aligned" / "vidA", [1, 2, 4, 5, 7])  # 3 and 6 have no face; 7 is past the labels
    write_images(root / "cropped_aligned" / "vidB_left", [1, 2, 3])
    write_images(root / "cropped_aligned" / "vidB_right", [1, 2, 3])
    write_images(root / "cropped_aligned" / "vidE", [1, 2])
    write_images(root / "cropped_aligned_new_50_vids" / "vidC", [1, 2, 3, 4, 5])
    (root / "videos").mkdir()
    (root / "videos" / "vidB.mp4").write_bytes(b"")
    (root / "videos" / "vidA.avi").write_bytes(b"")
    (root / "test_set").mkdir()
    (root / "test_set" / "Action_Unit_Detection_Challenge_test_set_release.txt").write_text("vidE\n")
    return labels


@pytest.fixture
def tree(tmp_path):
    return tmp_path, write_fake_affwild2(tmp_path)


def test_discovers_annotation_and_image_roots(tree):
    root, _ = tree
    dataset = AffWild2(root)
    assert dataset.annotation_root == root / ANNOTATION_ROOT
    assert dataset.image_roots == [root / "cropped_aligned", root / "cropped_aligned_new_50_vids"]
    assert dataset.image_dir("vidC") == root / "cropped_aligned_new_50_vids" / "vidC"
    assert dataset.image_dir("vidD") is None
    assert dataset.image_frames("vidA").tolist() == [1, 2, 4, 5, 7]
    assert dataset.splits("au") == ["train", "validation", "test"]
    assert dataset.splits("va") == ["train", "validation"]


def test_explicit_roots_and_missing_folders(tree, tmp_path):
    root, _ = tree
    dataset = AffWild2(root, annotation_root=root / ANNOTATION_ROOT, image_roots=[])
    assert dataset.image_dir("vidA") is None
    with pytest.raises(InputError, match="no such image folder"):
        AffWild2(root, image_roots=[root / "nope"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no annotation folder"):
        AffWild2(empty)
    (empty / "annotations" / "AU_Detection_Challenge" / "Train_Set").mkdir(parents=True)
    with pytest.raises(InputError, match="cropped_aligned"):
        AffWild2(empty)


def test_videos_and_labels(tree):
    root, labels = tree
    dataset = AffWild2(root)
    assert dataset.videos("train") == ["vidA", "vidB_left", "vidB_right", "vidD"]
    assert dataset.videos("train", "va") == ["vidB_left"]
    assert dataset.videos(["train", "validation"], ["au"]) == ["vidA", "vidB_left", "vidB_right", "vidC"]
    assert dataset.videos("test", "au") == ["vidE"]
    for (task, split, video), expected in labels.items():
        values = dataset.labels(task, split, video)
        np.testing.assert_array_equal(values, expected)
        assert values.dtype == (np.int64 if task == "expr" else np.float32)
    with pytest.raises(InputError, match="no such annotation folder"):
        dataset.videos("test", "va")
    with pytest.raises(InputError, match="unknown split"):
        dataset.videos("dev")
    with pytest.raises(InputError, match="has no expr annotation"):
        dataset.labels("expr", "train", "vidB_left")


def test_frame_table_merges_tasks(tree):
    root, labels = tree
    table = AffWild2(root).frame_table("train")
    assert table.features == frame_features()
    assert table.column_names == ["video", "frame", "image_path", "has_face", "au_labels", "expr_labels", "va_labels"]
    rows = table.with_format("numpy")[:]
    assert rows["video"].tolist() == ["vidA"] * 6 + ["vidB_left"] * 3 + ["vidB_right"] * 3 + ["vidD"] * 3
    assert rows["frame"].tolist() == [1, 2, 3, 4, 5, 6, 1, 2, 3, 1, 2, 3, 1, 2, 3]
    assert rows["has_face"][:6].tolist() == [True, True, False, True, True, False]
    assert rows["image_path"][0] == str(root / "cropped_aligned" / "vidA" / "00001.jpg")
    assert rows["image_path"][2] == ""
    assert not rows["has_face"][12:].any()  # vidD has no face crops
    np.testing.assert_array_equal(rows["au_labels"][:6], labels["au", "train", "vidA"])
    np.testing.assert_array_equal(rows["expr_labels"][:4], labels["expr", "train", "vidA"])
    assert rows["expr_labels"][4:6].tolist() == [-1, -1]  # past the end of vidA's EXPR file
    assert (rows["va_labels"][:6] == VA.invalid_value).all()  # vidA has no VA file
    np.testing.assert_array_equal(rows["va_labels"][6:9], labels["va", "train", "vidB_left"])
    assert (rows["au_labels"][12:] == AU.invalid_value).all()


def test_frame_table_tasks_splits_and_videos(tree):
    root, labels = tree
    dataset = AffWild2(root)
    table = dataset.frame_table(["train", "validation"], tasks=["va", "au"], videos=["vidC", "vidB_left"])
    assert table.column_names == ["video", "frame", "image_path", "has_face", "au_labels", "va_labels"]
    assert table.unique("video") == ["vidB_left", "vidC"]
    vid_c = table.filter(lambda row: row["video"] == "vidC").with_format("numpy")[:]
    np.testing.assert_array_equal(vid_c["va_labels"], labels["va", "validation", "vidC"])
    assert vid_c["image_path"][0].startswith(str(root / "cropped_aligned_new_50_vids"))
    with pytest.raises(InputError, match="vidX"):
        dataset.frame_table("train", videos=["vidX"])


def test_frame_table_cache(tree, tmp_path):
    root, _ = tree
    dataset = AffWild2(root)
    cache = tmp_path / "cache"
    table = dataset.frame_table("train", cache_dir=cache)
    assert table.to_dict() == dataset.frame_table("train").to_dict()
    assert table.cache_files and Path(table.cache_files[0]["filename"]).parent == cache  # memory-mapped from disk
    again = dataset.frame_table("train", cache_dir=cache)
    assert again.cache_files == table.cache_files
    write_annotation(root / ANNOTATION_ROOT / AU.challenge_dir / "Train_Set" / "vidA.txt", "au", np.zeros((7, 12)))
    changed = AffWild2(root).frame_table("train", cache_dir=cache)
    assert changed.cache_files != table.cache_files and len(changed) == len(table) + 1
    assert sorted(path.suffix for path in cache.iterdir()) == [".arrow", ".arrow"]  # no temporary files left


def test_same_video_twice_in_one_task(tree):
    root, _ = tree
    write_annotation(root / ANNOTATION_ROOT / AU.challenge_dir / "Validation_Set" / "vidA.txt", "au", np.zeros((2, 12)))
    with pytest.raises(InputError, match="two au annotations"):
        AffWild2(root).frame_table(["train", "validation"], "au")


AU_HEADER = ",".join(AU.labels)
MALFORMED = [
    ("au", "", "empty file"),
    ("au", "AU1,AU2\n" + "0,1\n", "line 1: header 'AU1,AU2'"),
    ("expr", "Neutral\n0\n", "line 1: header"),
    ("au", AU_HEADER + "\n" + ",".join(["0"] * 12) + "\n" + ",".join(["0"] * 11) + "\n", "line 3: expected 12"),
    ("au", AU_HEADER + "\n" + ",".join(["0"] * 11 + ["2"]) + "\n", "line 2: AU26 = 2 is out of range"),
    ("au", AU_HEADER + "\n" + ",".join(["0"] * 11 + ["x"]) + "\n", "line 2: 'x' is not a number"),
    ("expr", ",".join(EXPR.labels) + "\n3\n8\n", "line 3: class index = 8 is out of range"),
    ("expr", ",".join(EXPR.labels) + "\n3\n\n4\n", "line 3: empty line"),
    ("va", "valence,arousal\n0.5,-0.2\n0.1,1.5\n", "line 3: arousal = 1.5 is out of range"),
    ("va", "valence,arousal\n0.5,-0.2\n-5,nan\n", "line 3: arousal = nan is out of range"),
    ("va", "valence,arousal\n", "no frame lines"),
]


@pytest.mark.parametrize("task, text, message", MALFORMED)
def test_malformed_annotation_names_file_line_and_problem(tmp_path, task, text, message):
    path = tmp_path / "video7.txt"
    path.write_text(text)
    with pytest.raises(InputError, match="video7.txt") as error:
        read_annotation(path, task)
    assert message in str(error.value)


def test_annotation_tolerates_crlf_and_trailing_blank_lines(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("valence,arousal\r\n0.5,-0.25\r\n-5,-5\r\n\r\n")
    np.testing.assert_array_equal(read_annotation(path, "va"), [[0.5, -0.25], [-5, -5]])


def test_read_annotation_is_fast_on_full_length_files(tmp_path):
    path, labels = tmp_path / "long.txt", np.random.default_rng(0).integers(-1, 2, (50_000, 12))
    write_annotation(path, "au", labels)
    np.testing.assert_array_equal(read_annotation(path, "au"), labels)


def test_two_person_videos_and_raw_files(tree):
    root, _ = tree
    assert raw_video_name("vidB_left") == raw_video_name("vidB_right") == "vidB"
    assert raw_video_name("video10_1") == "video10_1"
    assert find_raw_video("vidB_right", [root / "nope", root / "videos"]) == root / "videos" / "vidB.mp4"
    assert find_raw_video("vidA", [root / "videos"]) == root / "videos" / "vidA.avi"
    with pytest.raises(InputError, match="vidC"):
        find_raw_video("vidC", [root / "videos"])


def test_test_list(tree, tmp_path):
    root, _ = tree
    assert read_test_list(find_test_list(root, "au")) == ["vidE"]
    path = tmp_path / "list.txt"
    path.write_text("vid1 \n\n  vid2_left\nvid3\n\n")
    assert read_test_list(path) == ["vid1", "vid2_left", "vid3"]
    path.write_text("vid1\nvid2\nvid1\n")
    with pytest.raises(InputError, match="line 3: video 'vid1' is listed twice"):
        read_test_list(path)
    path.write_text("video name\nvid1\n")
    with pytest.raises(InputError, match="line 1"):
        read_test_list(path)
    with pytest.raises(InputError, match="Expression_Recognition"):
        find_test_list(root, "expr")


def test_atomic_path_leaves_target_untouched_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]
