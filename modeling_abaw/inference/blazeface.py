"""MediaPipe's BlazeFace full-range face detector with its facial keypoints, run by LiteRT (`ai-edge-litert`).

The model (bundled in `face_models/`, Apache-2.0, see its README) looks at the image letterboxed into a 192x192
square and scores 2304 anchors, one per cell of a 48x48 grid; each anchor regresses a box and six keypoints (eyes,
nose tip, mouth centre, ear tragions), in units of the input side, relative to the anchor's centre. Detections above
the score threshold are merged by MediaPipe's weighted non-maximum suppression: overlapping detections are averaged,
weighted by their scores, which steadies boxes and keypoints from frame to frame. It finds faces turned and tilted
well past a frontal cascade's reach. Faces under ~24 pixels of its input (an eighth of the image's side) it mostly
misses, so a scan for faces of any size also runs it on four overlapping tiles of the image (each 0.6 of its side),
which finds faces down to ~4 % of the image's side, and merges all the detections.

The detector's four facial keypoints are the face's landmarks (`modeling_abaw.alignment.LANDMARKS`); the ear tragions
are dropped (they leave the picture as a head turns).
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from importlib import resources

import cv2
import numpy as np

from .faces import Box, FaceDetector, iou

MODEL_FILE = "face_detection_full_range.tflite"
INPUT_SIZE = 192
GRID = 48  # one anchor per cell, at the cell's centre
MIN_SCORE = 0.6  # MediaPipe's threshold for this model
NMS_OVERLAP = 0.3  # detections overlapping more than this (IoU) are one face
FACIAL_KEYPOINTS = 4  # of the six: both eyes, nose tip, mouth centre (alignment.LANDMARKS order)
# Faces under ~24 pixels of the model's input are mostly missed (measured on drawn SynthAffect faces: with boxes of
# 14 pixels 2 of 8 found, of 23 pixels all): when smaller faces are asked for, the image is also scanned in tiles,
# which enlarge them (then all 8 are found down to boxes of 4 % of the image's side, 5 of 8 at 3.5 %).
SMALLEST_RELIABLE_FACE = 24
TILE_FRACTION = 0.6


def litert_available() -> bool:
    """Whether LiteRT, which runs the model, is installed (it has no wheels for some platforms, e.g. Windows)."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    except ImportError:
        return False
    return True


class BlazeFaceDetector(FaceDetector):
    """BlazeFace full range (module docstring): one pass takes ~6 ms on a CPU core whatever the image's size (it is
    shrunk to 192x192), a scan for faces of any size five (with the tiles). Boxes carry the four facial landmarks;
    the score is the model's probability."""

    # It needs the face's surroundings: in windows of 1.5 box sides (the Haar cascade's 0.75 each way) it missed a
    # third of the faces turned by 30 degrees, in windows of 2 none (benchmarks/bench_faces.py).
    search_radius = 1.0
    # It still finds a face with a hand over its mouth and nose, at a lower score: on SynthAffect (seed 7, not the
    # benchmark's data) such frames scored 0.70-0.82 of the face's median, visible ones >= 0.82 in 99.9 %.
    occluded_score_ratio = 0.8

    def __init__(self, min_score: float = MIN_SCORE, model_path: str | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.min_score = min_score
        self.model_path = model_path or str(resources.files(__package__) / "face_models" / MODEL_FILE)
        self._interpreter_class = Interpreter
        cells = (np.arange(GRID) + 0.5) / GRID
        self.anchors = np.stack(np.meshgrid(cells, cells), axis=-1).reshape(-1, 2)  # (x, y), row by row
        # An interpreter holds its tensors between calls: one shared by threads (analyses served at once, e.g. by
        # the Space) would mix their images. Each thread loads its own, on first use.
        self._per_thread = threading.local()
        self._interpreter()  # fail here, not at the first frame, if the model cannot be loaded

    def _interpreter(self):
        if not hasattr(self._per_thread, "interpreter"):
            with _native_stderr_silenced():
                interpreter = self._interpreter_class(model_path=self.model_path, num_threads=1)
                interpreter.allocate_tensors()
            outputs = {detail["shape"][-1]: detail["index"] for detail in interpreter.get_output_details()}
            self._per_thread.interpreter = interpreter
            self._per_thread.indices = interpreter.get_input_details()[0]["index"], outputs[16], outputs[1]
        return self._per_thread.interpreter, self._per_thread.indices

    def __call__(self, image: np.ndarray, min_size: float = 0, max_size: float = float("inf")) -> list[Box]:
        side = max(image.shape[:2])
        rows, scores = self._detect(image)
        if min_size < SMALLEST_RELIABLE_FACE * side / INPUT_SIZE:  # faces too small for one pass are asked for
            for x, y, tile in _tiles(image):
                tile_rows, tile_scores = self._detect(tile)
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

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One pass of the model over the image letterboxed into its input: the detections above the threshold as
        rows (x0, y0, x1, y1, then the landmarks' x, y) in the image's pixels, and their scores."""
        height, width = image.shape[:2]
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        square = cv2.copyMakeBorder(image, top, side - height - top, left, side - width - left, cv2.BORDER_CONSTANT)
        interpolation = cv2.INTER_AREA if side > INPUT_SIZE else cv2.INTER_LINEAR
        pixels = cv2.resize(square, (INPUT_SIZE, INPUT_SIZE), interpolation=interpolation)
        interpreter, (input_index, regressors_index, scores_index) = self._interpreter()
        interpreter.set_tensor(input_index, (pixels.astype(np.float32) / 127.5 - 1.0)[None])
        interpreter.invoke()
        logits = interpreter.get_tensor(scores_index)[0, :, 0].astype(np.float64)
        candidates = np.flatnonzero(logits > np.log(self.min_score / (1 - self.min_score)))  # sigmoid > min_score
        regressed = interpreter.get_tensor(regressors_index)[0, candidates].astype(np.float64) / INPUT_SIZE
        anchors = self.anchors[candidates]
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
