"""Official ABAW test submissions from a test release (`abaw submit`).

The paper's models predict from the release's aligned face crops (`cropped_aligned/<video>/<frame>.jpg`, the input
they were trained on), not from faces detected anew; a TMF model takes its audio from the raw video, `<video>.mp4`
for `<video>_left` and `<video>_right` alike. For each task of the given models:

1. the rows: every frame of every video of the task's test list, in submission order (`data.submission.
   test_frame_counts`: the organisers' sample submission file when the release has it, else every frame of the raw
   video, cross-checked against the crops), all checked before any model runs;
2. the predictions: `AffectPipeline.predict_crops` (frames without a crop take the nearest face frame's prediction,
   then the model's smoothing policy), and the challenge's decisions (`AffectTask.decisions`);
3. the file: `data.submission.write_submission` (atomic), then read back with `read_submission` and checked to hold
   every listed video and frame exactly once, in order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..data.affwild2 import AffWild2, find_raw_video, image_name
from ..data.submission import read_submission, submission_file_name, test_frame_counts, write_submission
from ..errors import InputError
from ..tasks import TASKS
from .pipeline import AffectPipeline


def submit_test_set(
    root: str | os.PathLike,
    pipelines: Sequence[AffectPipeline],
    output_dir: str | os.PathLike,
    video_dirs: Sequence[str | os.PathLike] | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write `<output_dir>/<challenge>.csv` for every task of `pipelines` (one pipeline per task, e.g. the AU, EXPR
    and VA models) from the test release at `root`; returns task -> file.

    Raw videos are looked up in `video_dirs` (default: `<root>/videos` and `<root>`). Existing files are refused
    unless `overwrite`. Bad inputs (two models for one task, a test video without crops or raw video, an inconsistent
    release) raise InputError before anything is written.
    """
    root, output_dir = Path(root), Path(output_dir)
    video_dirs = [Path(d) for d in video_dirs] if video_dirs else [root / "videos", root]
    owner: dict[str, AffectPipeline] = {}
    for pipeline in pipelines:
        for task in pipeline.tasks:
            if task in owner:
                raise InputError(f"several models predict {task}; give one model per task")
            owner[task] = pipeline
    paths = {task: output_dir / submission_file_name(task) for task in owner}
    existing = [str(path) for path in paths.values() if path.exists()]
    if existing and not overwrite:
        raise InputError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace, or another --output")
    data = AffWild2(root)
    rows = {task: test_frame_counts(root, task, data, video_dirs)[0] for task in owner}
    for task, pipeline in owner.items():
        if pipeline.is_fusion:  # every raw video is found before the first prediction
            for video in rows[task]:
                find_raw_video(video, video_dirs)

    # A multi-task model predicts a video once for all its tasks.
    predicted: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for task, pipeline in owner.items():
        counts, decisions = rows[task], {}
        for video, count in tqdm(counts.items(), desc=f"submit {task}", unit="video", disable=None):
            key = (id(pipeline), video)
            if key not in predicted:
                predicted[key] = predict_test_video(pipeline, data, video, count, video_dirs)
            decisions[video] = TASKS[task].decisions(predicted[key][task])
        write_submission(paths[task], task, decisions, counts)
        check_submission(paths[task], task, counts)
    return paths


def predict_test_video(
    pipeline: AffectPipeline, data: AffWild2, video: str, num_frames: int, video_dirs: Sequence[Path]
) -> dict[str, np.ndarray]:
    """Post-processed predictions (task -> (num_frames, C)) of one test video from its aligned crops."""
    folder, with_crop = data.image_dir(video), set(data.image_frames(video).tolist())
    crops = [folder / image_name(frame) if frame in with_crop else None for frame in range(1, num_frames + 1)]
    audio_source = find_raw_video(video, video_dirs) if pipeline.is_fusion else None
    return pipeline.predict_crops(crops, audio_source)


def check_submission(path: Path, task: str, counts: dict[str, int]) -> None:
    """Read a written submission back and check it holds every video of `counts` with all its frames exactly once, in
    order (`read_submission` checks the header, the frame order and the values)."""
    found = {video: len(values) for video, values in read_submission(path, task).items()}
    if list(found.items()) != list(counts.items()):
        path.unlink()
        raise RuntimeError(f"{path} does not read back as written (videos or frames differ); it was removed")
