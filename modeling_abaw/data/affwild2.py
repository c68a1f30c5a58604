"""Reader for Aff-Wild2 as released for ABAW5/6, and for SynthAffect, which writes the same layout.

The layout is described in docs/CONVENTIONS.md. In short: annotation line i (after the header) labels frame i of the
video, and its face crop is `<image root>/<video>/<i as 5 digits>.jpg` unless no face was found in that frame.
Everything here works on whole files with numpy and on Arrow tables, because the real dataset has ~2.6M frames.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..io import atomic_path
from ..media import VIDEO_EXTENSIONS
from ..tasks import TASK_NAMES, TASKS, get_task, validate_tasks

# `datasets` (and its pyarrow) come with the train extra: imported where frame tables are built.
if TYPE_CHECKING:
    import datasets
    import pyarrow as pa

PathLike = str | os.PathLike

# Short split names (as in `datasets`) -> folder names of the official release; SynthAffect adds "Test_Set".
SPLIT_DIRS = {"train": "Train_Set", "validation": "Validation_Set", "test": "Test_Set"}
IMAGE_ROOT_PATTERN = "cropped_aligned*"
# Videos with two annotated people: the annotations and face crops carry the suffix, the raw video does not.
TWO_PERSON_SUFFIXES = ("_left", "_right")
FRAME_TABLE_VERSION = 2  # bump when the frame table's content changes, to invalidate caches


# ----------------------------------------------------------------------------------------------------------------------
# Small shared helpers (also used by submission.py and splits.py)


def image_name(frame: int) -> str:
    """File name of a 1-based frame's face crop, as in the release and in submission files."""
    return f"{frame:05d}.jpg"


def as_labels(values: np.ndarray, task: str) -> np.ndarray:
    """(N, columns) parsed values -> the task's label array: AU (N, 12) float, EXPR (N,) long, VA (N, 2) float."""
    spec = get_task(task)
    return values.astype(spec.label_dtype).reshape(spec.label_shape(len(values)))


def read_lines(path: PathLike) -> list[str]:
    """Lines of a text file without trailing blank lines; undecodable bytes become U+FFFD, so that they are reported
    as a bad value on their line instead of as a decoding error without a line number."""
    lines = Path(path).read_text(encoding="utf-8-sig", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def check_header(line: str, expected: Sequence[str], source: PathLike) -> None:
    if [field.strip() for field in line.split(",")] != list(expected):
        raise InputError(f"{source}, line 1: header {line.strip()!r} should be {','.join(expected)!r}")


def parse_numeric_rows(lines: Sequence[str], num_columns: int, source: PathLike, first_line: int) -> np.ndarray:
    """Parse comma-separated numbers into a (len(lines), num_columns) float64 array.

    numpy's C parser does the work; only when it fails is the text walked in Python, to name the first bad line.
    `first_line` is the line number of `lines[0]` in `source`, for the messages.
    """
    if not lines:
        return np.empty((0, num_columns))
    try:
        values = np.loadtxt(lines, delimiter=",", comments=None, ndmin=2)
        if values.shape == (len(lines), num_columns):  # loadtxt skips blank lines: the walk below names them
            return values
    except ValueError:
        pass
    rows = []
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            raise InputError(f"{source}, line {number}: empty line (every line must hold one frame)")
        fields = line.split(",")
        if len(fields) != num_columns:
            raise InputError(
                f"{source}, line {number}: expected {num_columns} comma-separated values, found {len(fields)}"
            )
        try:
            rows.append([float(field) for field in fields])
        except ValueError:
            bad = next(field for field in fields if not _is_number(field))
            raise InputError(f"{source}, line {number}: {bad.strip()!r} is not a number") from None
    return np.array(rows)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_labels(
    values: np.ndarray, task: str, source: PathLike, first_line: int, allow_invalid: bool = True, unit: str = "line"
) -> None:
    """Raise InputError at the first value outside the task's range: AU 0/1, EXPR 0..7, VA [-1, 1], and the task's
    "no label" marker when `allow_invalid` (annotations have it, predictions must not). `values` is (N, columns)."""
    spec = get_task(task)
    lowest, highest, integral = spec.valid_label_values
    valid = (values >= lowest) & (values <= highest)
    if integral:
        valid &= values == np.round(values)
        expected = f"an integer from {lowest:g} to {highest:g}"
    else:
        expected = f"a number in [{lowest:g}, {highest:g}]"
    if allow_invalid:
        valid |= values == spec.invalid_value
        expected += f" or {spec.invalid_value:g} (no label)"
    if not valid.all():
        row, column = np.argwhere(~valid)[0]
        name = spec.labels[column] if values.shape[1] == spec.num_outputs else "class index"
        where, value = f"{source}, {unit} {first_line + row}", values[row, column]
        raise InputError(f"{where}: {name} = {value:g} is out of range; expected {expected}")


# ----------------------------------------------------------------------------------------------------------------------
# Files of the release


def read_annotation(path: PathLike, task: str) -> np.ndarray:
    """Read and validate one annotation file: AU (N, 12) float, EXPR (N,) long or VA (N, 2) float, row i = frame i + 1.

    Missing labels keep the official markers (AU/EXPR -1, VA -5). A malformed file raises InputError naming the file,
    the line and the problem.
    """
    spec, lines = get_task(task), read_lines(path)
    if not lines:
        raise InputError(f"{path}: empty file; expected the header {','.join(spec.labels)!r}")
    check_header(lines[0], spec.labels, path)
    values = parse_numeric_rows(lines[1:], spec.num_value_columns, path, first_line=2)
    if not len(values):
        raise InputError(f"{path}: no frame lines after the header")
    check_labels(values, task, path, first_line=2)
    return as_labels(values, task)


def read_test_list(path: PathLike) -> list[str]:
    """Video names of an official test-set list, one per line, in file order (the order of the submission).

    Blank lines and surrounding spaces are ignored. The official lists have no header and none is guessed at: a name
    that cannot be a video folder (spaces, commas, slashes) or a repeated name raises InputError with its line.
    """
    videos: list[str] = []
    for number, line in enumerate(read_lines(path), start=1):
        name = line.strip()
        if not name:
            continue
        if any(char in name for char in " \t,/\\"):
            raise InputError(f"{path}, line {number}: {name!r} is not a video name")
        if name in videos:
            raise InputError(f"{path}, line {number}: video {name!r} is listed twice")
        videos.append(name)
    if not videos:
        raise InputError(f"{path}: the test list names no video")
    return videos


def find_release_file(root: PathLike, names: Sequence[str]) -> Path | None:
    """The first of `names` found in `root` or up to two folders below it, or None. Test releases put their files
    one or two folders down (SynthAffect: `<root>/test_set/`; Aff-Wild2: e.g.
    `<root>/<test release>/names_of_videos_in_each_test_set/`)."""
    for name in names:
        found = sorted(path for pattern in (name, f"*/{name}", f"*/*/{name}") for path in Path(root).glob(pattern))
        if found:
            return found[0]
    return None


def find_test_list(root: PathLike, task: str) -> Path:
    """The official test list of a task in `root` or up to two folders below it (`find_release_file`)."""
    name = get_task(task).test_list_file
    found = find_release_file(root, [name])
    if found is None:
        raise InputError(f"{root}: no {name} in this folder or the two levels of folders below it")
    return found


def raw_video_name(video: str) -> str:
    """Raw video (and audio) of an annotated video: `<video>_left` and `<video>_right` both come from `<video>`."""
    for suffix in TWO_PERSON_SUFFIXES:
        if video.endswith(suffix):
            return video[: -len(suffix)]
    return video


def find_raw_video(video: str, video_dirs: Iterable[PathLike]) -> Path:
    """Path of the raw video file of an annotated video, looked up directly in each of `video_dirs` in order
    (real releases split them over batch1/, batch2/, new_vids/), with any of the VIDEO_EXTENSIONS."""
    name, video_dirs = raw_video_name(video), [Path(directory) for directory in video_dirs]
    for directory in video_dirs:
        for extension in VIDEO_EXTENSIONS:
            if (candidate := directory / f"{name}{extension}").is_file():
                return candidate
    searched = ", ".join(str(directory) for directory in video_dirs) or "no folder"
    raise InputError(f"no raw video {name}{{{','.join(VIDEO_EXTENSIONS)}}} for {video!r} in {searched}")


def find_annotation_root(root: PathLike) -> Path:
    """The folder holding the challenge folders: `root` itself or the one sub-folder that has them (its name varies
    between releases, e.g. "6th ABAW Annotations"; SynthAffect uses "annotations")."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset folder")
    challenge_dirs = [spec.challenge_dir for spec in TASKS.values()]
    found = [
        folder
        for folder in [root, *sorted(root.iterdir())]
        if folder.is_dir() and any((folder / name).is_dir() for name in challenge_dirs)
    ]
    if not found:
        raise InputError(
            f"{root}: no annotation folder (one holding {' / '.join(challenge_dirs)}) here or one level below"
        )
    if found[0] != root and len(found) > 1:
        raise InputError(
            f"{root}: several annotation folders ({', '.join(p.name for p in found)}); pass annotation_root"
        )
    return found[0]


# ----------------------------------------------------------------------------------------------------------------------
# The dataset


class AffWild2:
    """Index of an Aff-Wild2 tree: which videos each task annotates per split, their labels, and their face crops.

    Args:
        root: the dataset folder.
        annotation_root: the folder holding AU_Detection_Challenge/ etc.; found under `root` when not given.
        image_roots: folders of `<video>/00001.jpg` face crops; default: every `cropped_aligned*` folder of `root`, in
            name order. A video found in several uses the first. Pass `[]` to work without images (e.g. from features).
    """

    def __init__(
        self,
        root: PathLike,
        annotation_root: PathLike | None = None,
        image_roots: Sequence[PathLike] | None = None,
    ):
        self.root = Path(root)
        self.annotation_root = Path(annotation_root) if annotation_root is not None else find_annotation_root(root)
        if image_roots is None:
            image_roots = sorted(path for path in self.root.glob(IMAGE_ROOT_PATTERN) if path.is_dir())
            if not image_roots:
                raise InputError(f"{root}: no {IMAGE_ROOT_PATTERN} image folder; pass image_roots ([] for none)")
        self.image_roots = [Path(path) for path in image_roots]
        for path in self.image_roots:
            if not path.is_dir():
                raise InputError(f"{path}: no such image folder")
        self._image_dirs: dict[str, Path] = {}
        for image_root in self.image_roots:
            for entry in os.scandir(image_root):
                if entry.is_dir():
                    self._image_dirs.setdefault(entry.name, Path(entry.path))
        # (task, split) -> {video: annotation file}, for the splits present on disk.
        self._annotations: dict[tuple[str, str], dict[str, Path]] = {}
        for task, spec in TASKS.items():
            for split, split_dir in SPLIT_DIRS.items():
                folder = self.annotation_root / spec.challenge_dir / split_dir
                if folder.is_dir():
                    self._annotations[task, split] = {path.stem: path for path in sorted(folder.glob("*.txt"))}
        if not self._annotations:
            raise InputError(f"{self.annotation_root}: no <challenge>/<split> annotation folders")

    def splits(self, task: str) -> list[str]:
        """The splits (`train`, `validation`, `test`) with annotations of `task` on disk."""
        return [split for (name, split) in self._annotations if name == get_task(task).name]

    def annotation_path(self, task: str, split: str, video: str) -> Path:
        try:
            return self._annotation_files(task, split)[video]
        except KeyError:
            raise InputError(f"video {video!r} has no {task} annotation in the {split} split") from None

    def labels(self, task: str, split: str, video: str) -> np.ndarray:
        """Validated labels of one video (see `read_annotation`)."""
        return read_annotation(self.annotation_path(task, split, video), task)

    def videos(self, splits: str | Sequence[str] = "train", tasks: str | Sequence[str] = TASK_NAMES) -> list[str]:
        """Sorted names of the videos annotated for any of `tasks` in any of `splits`."""
        return sorted(self._video_files(splits, tasks))

    def image_dir(self, video: str) -> Path | None:
        """Folder of the video's face crops, or None when no image root has it."""
        return self._image_dirs.get(video)

    def image_frames(self, video: str) -> np.ndarray:
        """Sorted 1-based numbers of the frames that have a face crop (frames without a detected face have none)."""
        folder = self.image_dir(video)
        if folder is None:
            return np.empty(0, dtype=np.int64)
        stems = [entry.name[:-4] for entry in os.scandir(folder) if entry.name.endswith(".jpg")]
        return np.sort(np.array([int(stem) for stem in stems if stem.isdigit()], dtype=np.int64))

    def frame_table(
        self,
        splits: str | Sequence[str] = "train",
        tasks: str | Sequence[str] = TASK_NAMES,
        videos: Iterable[str] | None = None,
        cache_dir: PathLike | None = None,
    ) -> datasets.Dataset:
        """One row per annotated frame of the videos of `splits`, ordered by video then frame (see `frame_features`).

        A video keeps the frames 1..N of its longest annotation among `tasks`; the labels of a task that does not
        annotate the video (or annotates fewer frames) hold its "no label" marker. Several splits may be merged, e.g.
        `("train", "validation")` for k-fold cross-validation; `videos` keeps only those videos.

        With `cache_dir` the table is written there as an Arrow file (atomically) and memory-mapped, and reused while
        the annotation files and image folders are unchanged; without it the table lives in memory.
        """
        import datasets
        import pyarrow as pa

        tasks = validate_tasks(tasks)
        files = self._video_files(splits, tasks)
        if videos is not None:
            wanted = list(dict.fromkeys(videos))
            unknown = [video for video in wanted if video not in files]
            if unknown:
                raise InputError(f"videos not annotated in {splits} for {', '.join(tasks)}: {', '.join(unknown[:5])}")
            files = {video: files[video] for video in sorted(wanted)}
        schema = frame_features(tasks).arrow_schema
        batches = (self._video_batch(video, video_files, tasks, schema) for video, video_files in files.items())
        if cache_dir is None:
            return datasets.Dataset(pa.Table.from_batches(list(batches), schema=schema))
        path = Path(cache_dir) / f"frames-{'+'.join(tasks)}-{self._fingerprint(files, tasks)}.arrow"
        if not path.is_file():
            with (
                atomic_path(path) as temporary,
                pa.OSFile(str(temporary), "wb") as sink,
                pa.ipc.new_stream(sink, schema) as writer,
            ):
                for batch in batches:
                    writer.write_batch(batch)
        return datasets.Dataset.from_file(str(path))

    def _annotation_files(self, task: str, split: str) -> dict[str, Path]:
        if split not in SPLIT_DIRS:
            raise InputError(f"unknown split {split!r}; choose from {', '.join(SPLIT_DIRS)}")
        try:
            return self._annotations[get_task(task).name, split]
        except KeyError:
            folder = self.annotation_root / get_task(task).challenge_dir / SPLIT_DIRS[split]
            raise InputError(f"{folder}: no such annotation folder") from None

    def _video_files(self, splits: str | Sequence[str], tasks: str | Sequence[str]) -> dict[str, dict[str, Path]]:
        """video -> {task: annotation file}, merged over splits; a video is annotated at most once per task."""
        files: dict[str, dict[str, Path]] = {}
        for split in [splits] if isinstance(splits, str) else splits:
            for task in validate_tasks(tasks):
                for video, path in self._annotation_files(task, split).items():
                    if task in files.setdefault(video, {}):
                        raise InputError(f"video {video!r} has two {task} annotations: {files[video][task]} and {path}")
                    files[video][task] = path
        return dict(sorted(files.items()))

    def _video_batch(
        self, video: str, files: Mapping[str, Path], tasks: list[str], schema: pa.Schema
    ) -> pa.RecordBatch:
        import pyarrow as pa

        labels = {task: read_annotation(path, task) for task, path in files.items()}
        length = max(len(values) for values in labels.values())
        has_face = np.zeros(length + 1, dtype=bool)
        image_frames = self.image_frames(video)
        has_face[image_frames[image_frames <= length]] = True  # crops beyond the annotation have no label: unused
        has_face = has_face[1:]
        prefix = f"{self.image_dir(video)}{os.sep}"
        image_paths = [prefix + image_name(frame) if face else "" for frame, face in enumerate(has_face.tolist(), 1)]
        columns = [
            pa.array([video] * length),
            pa.array(np.arange(1, length + 1, dtype=np.int32)),
            pa.array(image_paths),
            pa.array(has_face),
        ]
        for task in tasks:
            spec = TASKS[task]
            values = np.full(spec.label_shape(length), spec.invalid_value, dtype=spec.label_dtype)
            if task in labels:
                values[: len(labels[task])] = labels[task]
            flat = pa.array(values.reshape(-1))
            columns.append(flat if values.ndim == 1 else pa.FixedSizeListArray.from_arrays(flat, values.shape[1]))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _fingerprint(self, files: Mapping[str, Mapping[str, Path]], tasks: list[str]) -> str:
        """Hash of what the table is built from: annotation files (size, mtime) and image folders (mtime changes when a
        crop is added or removed), so a stale cache is never reused."""

        def stamp(path: Path | None) -> list:
            if path is None:
                return []
            stat = path.stat()
            return [str(path), stat.st_size, stat.st_mtime_ns]

        content = [FRAME_TABLE_VERSION, tasks]
        for video, video_files in files.items():
            content.append(
                [video, [stamp(video_files[task]) for task in sorted(video_files)], stamp(self.image_dir(video))]
            )
        return hashlib.sha256(json.dumps(content).encode()).hexdigest()[:16]


def frame_features(tasks: str | Sequence[str] = TASK_NAMES) -> datasets.Features:
    """Schema of the frame table: `video` (str), `frame` (1-based int32), `image_path` (str, "" without a face crop),
    `has_face` (bool), then per task `au_labels` (12 float32), `expr_labels` (int64), `va_labels` (2 float32)."""
    import datasets

    features = {
        "video": datasets.Value("string"),
        "frame": datasets.Value("int32"),
        "image_path": datasets.Value("string"),
        "has_face": datasets.Value("bool"),
    }
    for task in validate_tasks(tasks):
        spec = TASKS[task]
        value = datasets.Value(spec.label_dtype)
        per_frame = spec.label_shape(1)[1:]  # () for a class index, (outputs,) for AU and VA
        features[spec.label_key] = datasets.List(value, length=per_frame[0]) if per_frame else value
    return datasets.Features(features)
