"""Predictions in the ABAW5/6 submission formats, written atomically, and a reader that checks a submission file.

- One CSV file per task (ABAW5/6): header `image_location,<label names>`, then one row `<video>/00001.jpg,<values>` per
  frame of every test video, in test-list order, frames without a face included. AU rows hold 12 binary values, VA
  rows two floats, and EXPR rows one class index 0-7 although the header names all eight classes.
- The older per-video format: `<video>.txt` with the annotation header and one line per frame, i.e. the annotation
  format, read back with `read_annotation`.

Predictions are given per video as arrays over all its frames (AU (N, 12) 0/1, EXPR (N,) class indices, VA (N, 2) in
[-1, 1]), with `num_frames` the frame count of each test video, in submission order: the writers check that every
frame is predicted, so that a file is never submitted with frames missing. `test_frame_counts` gives that order and
those counts from a test release.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import atomic_path, write_text
from ..media import video_frame_times
from ..tasks import get_task
from .affwild2 import (
    AffWild2,
    PathLike,
    as_labels,
    check_header,
    check_labels,
    find_raw_video,
    find_release_file,
    find_test_list,
    image_name,
    parse_numeric_rows,
    raw_video_name,
    read_lines,
    read_test_list,
)

IMAGE_LOCATION = re.compile(r"(.+)/(\d{5,})\.jpg")


def submission_file_name(task: str) -> str:
    """The file name of a task's submission: `<challenge folder>.csv`, e.g. AU_Detection_Challenge.csv."""
    return f"{get_task(task).challenge_dir}.csv"


def submission_header(task: str) -> list[str]:
    return ["image_location", *get_task(task).labels]


def write_submission(
    path: PathLike, task: str, predictions: Mapping[str, np.ndarray], num_frames: Mapping[str, int]
) -> Path:
    """Write the ABAW5/6 submission file of `task`: a row per frame of each video of `num_frames`, in its order."""
    path = Path(path)
    checked = _checked_predictions(task, predictions, num_frames)
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8", newline="\n") as file:
        file.write(",".join(submission_header(task)) + "\n")
        for video, values in checked.items():
            rows = _format_rows(values, task)
            file.writelines(f"{video}/{image_name(frame)},{row}\n" for frame, row in enumerate(rows, start=1))
    return path


def read_submission(path: PathLike, task: str) -> dict[str, np.ndarray]:
    """Read and check an ABAW5/6 submission file: {video: predictions} in file order, arrays as in `read_annotation`.

    Raises InputError naming the line of a wrong header, a malformed image location, a frame missing or out of order,
    or a value outside the task's range.
    """
    lines = read_lines(path)
    if not lines:
        raise InputError(f"{path}: empty file; expected the header {','.join(submission_header(task))!r}")
    check_header(lines[0], submission_header(task), path)
    rows = [line.partition(",") for line in lines[1:]]
    values = parse_numeric_rows([row[2] for row in rows], get_task(task).num_value_columns, path, first_line=2)
    check_labels(values, task, path, first_line=2, allow_invalid=False)
    videos = _video_rows([row[0] for row in rows], path)
    return {video: as_labels(values[video_rows], task) for video, video_rows in videos.items()}


def find_sample_submission(root: PathLike, task: str) -> Path | None:
    """The organisers' sample submission file of `task` in a test release (ABAW6, else ABAW5), or None."""
    return find_release_file(root, get_task(task).sample_submission_files)


def read_sample_submission(path: PathLike) -> dict[str, int]:
    """The rows a sample submission file fixes: {video: number of frames}, in file order.

    Its first line is a header starting with `image_location`; each row starts with `<video>/<5-digit frame>.jpg`
    (what follows, empty in the organisers' files, is ignored); each video's rows are together and list its frames
    1, 2, ... in order.
    """
    lines = read_lines(path)
    if not lines or lines[0].split(",")[0].strip() != "image_location":
        raise InputError(f"{path}, line 1: expected a header starting with 'image_location'")
    rows = _video_rows([line.partition(",")[0] for line in lines[1:]], path)
    if not rows:
        raise InputError(f"{path}: no image_location rows after the header")
    return {video: video_rows.stop - video_rows.start for video, video_rows in rows.items()}


def test_frame_counts(
    root: PathLike, task: str, data: AffWild2, video_dirs: Sequence[PathLike]
) -> tuple[dict[str, int], str]:
    """The frames to predict for `task` in a test release: {video: frame count} in submission order, and what fixed
    them (for messages).

    The videos are those of the task's test list (`find_test_list`). When the organisers' sample submission file is
    in the release (`find_sample_submission`), its rows give the order and the frames; it must name exactly the test
    list's videos. Otherwise the list's order, and every frame of the raw video (the challenge's rule: a row per frame
    of the video, frames without a face included), counted by decoding it; `<video>_left` and `<video>_right` share
    `<video>`'s count. Either way a video's face crops (`data`) must fit in its frames: a crop numbered beyond the
    count, or a video without any crop, is reported (InputError), never padded or dropped.
    """
    test_list = find_test_list(root, task)
    videos = read_test_list(test_list)
    sample = find_sample_submission(root, task)
    if sample is not None:
        counts, source = read_sample_submission(sample), str(sample)
        missing, extra = sorted(set(videos) - set(counts)), sorted(set(counts) - set(videos))
        if missing or extra:
            raise InputError(
                f"{sample} and {test_list} name different videos: "
                + "; ".join(
                    part
                    for part in (
                        f"{len(missing)} only in the test list (e.g. {missing[0]!r})" if missing else "",
                        f"{len(extra)} only in the sample file (e.g. {extra[0]!r})" if extra else "",
                    )
                    if part
                )
            )
    else:
        raw_counts: dict[str, int] = {}
        for video in videos:
            raw = raw_video_name(video)
            if raw not in raw_counts:
                raw_counts[raw] = len(video_frame_times(find_raw_video(video, video_dirs)))
        counts, source = {video: raw_counts[raw_video_name(video)] for video in videos}, "the frames of the raw videos"
    for video, count in counts.items():
        crops = data.image_frames(video)
        if not len(crops):
            raise InputError(f"test video {video!r} has no face crops in {', '.join(map(str, data.image_roots))}")
        if crops[-1] > count:
            raise InputError(
                f"test video {video!r}: a face crop numbered {crops[-1]} but {count} frames by {source}; "
                "the release is inconsistent (no row is padded or dropped)"
            )
    return counts, source


def write_video_submissions(
    directory: PathLike, task: str, predictions: Mapping[str, np.ndarray], num_frames: Mapping[str, int]
) -> list[Path]:
    """Write the older per-video format: `<directory>/<video>.txt` per video of `num_frames`, in annotation format."""
    checked = _checked_predictions(task, predictions, num_frames)
    header = ",".join(get_task(task).labels)
    paths = []
    for video, values in checked.items():
        paths.append(Path(directory) / f"{video}.txt")
        write_text(paths[-1], "\n".join([header, *_format_rows(values, task)]) + "\n")
    return paths


def _checked_predictions(
    task: str, predictions: Mapping[str, np.ndarray], num_frames: Mapping[str, int]
) -> dict[str, np.ndarray]:
    """Predictions as (N, columns) arrays in `num_frames` order, after checking videos, frame counts and values (all
    before anything is written, so a bad video never leaves part of a submission behind)."""
    extra = sorted(set(predictions) - set(num_frames))
    if extra:
        raise InputError(f"predictions for videos that are not in the test list: {', '.join(extra[:5])}")
    columns = get_task(task).num_value_columns
    checked = {}
    for video, count in num_frames.items():
        if video not in predictions:
            raise InputError(f"no predictions for test video {video!r}")
        values = np.asarray(predictions[video], dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if values.shape != (count, columns):
            raise InputError(
                f"predictions for {video!r} have shape {tuple(np.shape(predictions[video]))}; expected one row per "
                f"frame ({count}) of {columns} value(s) for {task}"
            )
        check_labels(values, task, f"predictions for {video!r}", first_line=1, allow_invalid=False, unit="frame")
        checked[video] = values
    return checked


def _format_rows(values: np.ndarray, task: str) -> list[str]:
    """Comma-joined rows: VA as the shortest text that reads back to the same float32, class decisions as integers
    (through %-formatting, several times faster than numpy's string casts on a million 12-AU rows)."""
    _, _, integral = get_task(task).valid_label_values
    if not integral:
        return [",".join(row) for row in values.astype(np.float32).astype(str).tolist()]
    row_format = ",".join(["%d"] * values.shape[1])
    return [row_format % tuple(row) for row in values.astype(np.int64).tolist()]


def _video_rows(locations: list[str], path: PathLike) -> dict[str, slice]:
    """Rows of each video, checking that the rows of a video are together and list its frames 1, 2, ... in order."""
    rows: dict[str, slice] = {}
    video, expected, first = None, 1, 0
    for row, location in enumerate(locations):
        match = IMAGE_LOCATION.fullmatch(location.strip())
        if match is None:
            raise InputError(f"{path}, line {row + 2}: image_location {location!r} is not <video>/<5-digit frame>.jpg")
        if match[1] != video:
            if video is not None:
                rows[video] = slice(first, row)
            if match[1] in rows:
                raise InputError(f"{path}, line {row + 2}: the rows of video {match[1]!r} are not all together")
            video, expected, first = match[1], 1, row
        if int(match[2]) != expected:
            raise InputError(
                f"{path}, line {row + 2}: frame {int(match[2])} of {video!r} where frame {expected} was expected "
                "(every frame must be listed, in order)"
            )
        expected += 1
    if video is not None:
        rows[video] = slice(first, len(locations))
    return rows
