"""MediaPipe's BlazeFace face detectors with their facial keypoints, run by LiteRT (`ai-edge-litert`).

Two models are bundled (`face_models/`, Apache-2.0, see its README). Each looks at the image letterboxed into its
input square and scores a fixed set of anchors; each anchor regresses a box and six keypoints (eyes, nose tip, mouth
centre, ear tragions), in units of the input side, relative to the anchor's centre. Detections above the model's
score threshold are merged by MediaPipe's weighted non-maximum suppression: overlapping detections are averaged,
weighted by their scores, which steadies boxes and keypoints from frame to frame.

- The full-range model (192x192 input, 2304 anchors on a 48x48 grid) finds faces turned and tilted well past a
  frontal cascade's reach, near and far. Faces under ~24 pixels of its input (an eighth of the image's side) it
  mostly misses, so a scan for faces of any size also runs it on four overlapping tiles of the image (each 0.6 of
  its side), which finds faces down to ~4 % of the image's side, and merges all the detections.
- The short-range model (128x128 input, 896 anchors), made for faces that fill much of the picture, takes a third
  of the full-range model's time. It answers when the faces asked for are at least a quarter of the image's side:
  the tracker's searches around a followed face, which are most calls.

The detector's four facial keypoints are the face's landmarks (`modeling_abaw.alignment.LANDMARKS`); the ear tragions
are dropped (they leave the picture as a head turns).
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from importlib import resources
from typing import NamedTuple

import cv2
import numpy as np

from .faces import Box, FaceDetector, iou


def anchor_centres(input_size: int, layers: list[tuple[int, int]]) -> np.ndarray:
    """(x, y) centres of a BlazeFace model's anchors in units of its input side, in its output order: per
    (stride, anchors per cell) layer, the cells row by row, each cell's anchors together (all at its centre)."""
    centres = []
    for stride, per_cell in layers:
        cells = (np.arange(input_size // stride) + 0.5) * stride / input_size
        grid = np.stack(np.meshgrid(cells, cells), axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres)


class BlazeFaceModel(NamedTuple):
    """One of MediaPipe's BlazeFace models: its file in `face_models/`, input side, anchors and score threshold (the
    values of MediaPipe's graphs for it)."""

    file: str
    input_size: int
    anchors: np.ndarray
    min_score: float


FULL_RANGE = BlazeFaceModel("face_detection_full_range.tflite", 192, anchor_centres(192, [(4, 1)]), 0.6)
SHORT_RANGE = BlazeFaceModel("face_detection_short_range.tflite", 128, anchor_centres(128, [(8, 2), (16, 6)]), 0.5)
NMS_OVERLAP = 0.3  # detections overlapping more than this (IoU) are one face
FACIAL_KEYPOINTS = 4  # of the six: both eyes, nose tip, mouth centre (alignment.LANDMARKS order)
# Faces under ~24 pixels of the full-range model's input are mostly missed (measured on drawn SynthAffect faces:
# with boxes of 14 pixels 2 of 8 found, of 23 pixels all): when smaller faces are asked for, the image is also
# scanned in tiles, which enlarge them (then all 8 are found down to boxes of 4 % of the image's side, 5 of 8 at
# 3.5 %).
SMALLEST_RELIABLE_FACE = 24
TILE_FRACTION = 0.6
CLOSE_FACE = 0.25  # faces at least this fraction of the image's side are the short-range model's


def litert_available() -> bool:
    """Whether LiteRT, which runs the model, is installed (it has no wheels for some platforms, e.g. Windows)."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    except ImportError:
        return False
    return True


class BlazeFaceDetector(FaceDetector):
    """BlazeFace (module docstring): a full-range pass takes ~6 ms on a CPU core whatever the image's size (it is
    shrunk to 192x192), a scan for faces of any size five (with the tiles), a short-range pass ~2 ms. Boxes carry
    the four facial landmarks; the score is the model's probability."""

    # It needs the face's surroundings: in windows of 1.5 box sides (the Haar cascade's 0.75 each way) it missed a
    # third of the faces turned by 30 degrees, in windows of 2 none (benchmarks/bench_faces.py).
    search_radius = 1.0
    # It still finds a face with a hand over its mouth and nose, at a lower score, or with the landmarks it cannot see
    # guessed out of place. Measured through the tracker on SynthAffect (seed 7, 24 videos: not the benchmark's
    # data), as generated, turned by 30 degrees and shrunk to a third: visible faces scored >= 0.88 of their median
    # in 99.9 % of frames, covered ones <= 0.87, 97 % of them under 0.85; the layout of visible faces moved more
    # than 0.02 of the crop's side from its usual one in <= 0.07 % of frames.
    occluded_score_ratio = 0.85
    occluded_layout_change = 0.02

    def __init__(self, models_dir: str | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.models_dir = models_dir or str(resources.files(__package__) / "face_models")
        self._interpreter_class = Interpreter
        # An interpreter holds its tensors between calls: one shared by threads (analyses served at once, e.g. by
        # the Space) would mix their images. Each thread loads its own, on first use.
        self._per_thread = threading.local()
        for model in (FULL_RANGE, SHORT_RANGE):
            self._interpreter(model)  # fail here, not at the first frame, if a model cannot be loaded

    def _interpreter(self, model: BlazeFaceModel):
        """This thread's interpreter of `model` and its (input, regressors, scores) tensor indices."""
        loaded = self._per_thread.__dict__.setdefault("interpreters", {})
        if model.file not in loaded:
            with _native_stderr_silenced():
                interpreter = self._interpreter_class(
                    model_path=os.path.join(self.models_dir, model.file), num_threads=1
                )
                interpreter.allocate_tensors()
            outputs = {detail["shape"][-1]: detail["index"] for detail in interpreter.get_output_details()}
            loaded[model.file] = interpreter, (interpreter.get_input_details()[0]["index"], outputs[16], outputs[1])
        return loaded[model.file]

    def __call__(self, image: np.ndarray, min_size: float = 0, max_size: float = float("inf")) -> list[Box]:
        side = max(image.shape[:2])
        rows, scores = self._detect(image, SHORT_RANGE if min_size >= CLOSE_FACE * side else FULL_RANGE)
        if min_size < SMALLEST_RELIABLE_FACE * side / FULL_RANGE.input_size:  # too small for one pass are asked for
            for x, y, tile in _tiles(image):
                tile_rows, tile_scores = self._detect(tile, FULL_RANGE)
                rows = np.vstack([rows, tile_rows + np.tile([x, y], tile_rows.shape[1] // 2)])
                scores = np.concatenate([scores, tile_scores])
        boxes = []
        for score, merged in weighted_nms(rows, scores):
            x0, y0, x1, y1 = merged[:4]
            landmarks = tuple((float(x), float(y)) for x, y in merged[4:].reshape(-1, 2))
            box = Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0), score, landmarks)
            if min_size <= max(box.w, box.h) <= max_size:
                boxes.append(box)
        return boxes

    def _detect(self, image: np.ndarray, model: BlazeFaceModel) -> tuple[np.ndarray, np.ndarray]:
        """One pass of `model` over the image letterboxed into its input: the detections above its threshold as
        rows (x0, y0, x1, y1, then the landmarks' x, y) in the image's pixels, and their scores."""
        height, width = image.shape[:2]
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        square = cv2.copyMakeBorder(image, top, side - height - top, left, side - width - left, cv2.BORDER_CONSTANT)
        interpolation = cv2.INTER_AREA if side > model.input_size else cv2.INTER_LINEAR
        pixels = cv2.resize(square, (model.input_size,) * 2, interpolation=interpolation)
        interpreter, (input_index, regressors_index, scores_index) = self._interpreter(model)
        interpreter.set_tensor(input_index, (pixels.astype(np.float32) / 127.5 - 1.0)[None])
        interpreter.invoke()
        logits = interpreter.get_tensor(scores_index)[0, :, 0].astype(np.float64)
        candidates = np.flatnonzero(logits > np.log(model.min_score / (1 - model.min_score)))  # sigmoid > min_score
        regressed = interpreter.get_tensor(regressors_index)[0, candidates].astype(np.float64) / model.input_size
        anchors = model.anchors[candidates]
        centres, sizes = regressed[:, :2] + anchors, regressed[:, 2:4]
        keypoints = regressed[:, 4 : 4 + 2 * FACIAL_KEYPOINTS] + np.tile(anchors, FACIAL_KEYPOINTS)
        rows = np.hstack([centres - sizes / 2, centres + sizes / 2, keypoints])
        rows = rows * side - np.tile([left, top], rows.shape[1] // 2)
        return rows, 1 / (1 + np.exp(-logits[candidates]))


@contextmanager
def _native_stderr_silenced():
    """LiteRT's C++ core logs "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on the process's stderr when
    an interpreter is made, with no setting to turn it off: a stray line in every command's output (and in the one
    line a user error gets). The file descriptor is pointed at /dev/null meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _tiles(image: np.ndarray):
    """(x, y, tile) of the 2x2 overlapping tiles, each 0.6 of the image's longer side (faces 1.7x larger in the
    model's input than in a whole-image pass), that cover the image; none for an image no larger than a tile."""
    height, width = image.shape[:2]
    size = round(TILE_FRACTION * max(height, width))
    xs = sorted({0, max(width - size, 0)})
    ys = sorted({0, max(height - size, 0)})
    if len(xs) == len(ys) == 1:
        return
    for y in ys:
        for x in xs:
            yield x, y, image[y : y + size, x : x + size]


def weighted_nms(detections: np.ndarray, scores: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """MediaPipe's weighted non-maximum suppression: the best remaining detection and every detection overlapping it
    by more than NMS_OVERLAP become one, the score-weighted mean of their rows, with the best one's score. Rows are
    (x0, y0, x1, y1, ...), the box first."""
    order = list(np.argsort(-scores))
    as_box = lambda row: Box(row[0], row[1], row[2] - row[0], row[3] - row[1])
    merged = []
    while order:
        best = as_box(detections[order[0]])
        cluster = [index for index in order if iou(best, as_box(detections[index])) > NMS_OVERLAP] or order[:1]
        weights = scores[cluster]
        merged.append((float(scores[order[0]]), weights @ detections[cluster] / weights.sum()))
        order = [index for index in order if index not in cluster]
    return merged
