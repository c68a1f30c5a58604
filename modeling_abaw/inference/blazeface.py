"""MediaPipe's BlazeFace full-range face detector with its facial keypoints, run by LiteRT (`ai-edge-litert`).

The model (bundled in `face_models/`, Apache-2.0, see its README) looks at the image letterboxed into a 192x192
square and scores 2304 anchors, one per cell of a 48x48 grid; each anchor regresses a box and six keypoints (eyes,
nose tip, mouth centre, ear tragions), in units of the input side, relative to the anchor's centre. Detections above
the score threshold are merged by MediaPipe's weighted non-maximum suppression: overlapping detections are averaged,
weighted by their scores, which steadies boxes and keypoints from frame to frame. It finds faces turned and tilted
well past a frontal cascade's reach, from about a twentieth of the image's side.

The detector's four facial keypoints are the face's landmarks (`modeling_abaw.alignment.LANDMARKS`); the ear tragions
are dropped (they leave the picture as a head turns).
"""

from __future__ import annotations

import threading
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


def litert_available() -> bool:
    """Whether LiteRT, which runs the model, is installed (it has no wheels for some platforms, e.g. Windows)."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    except ImportError:
        return False
    return True


class BlazeFaceDetector(FaceDetector):
    """BlazeFace full range (module docstring): ~5 ms per frame on a CPU core, whatever the frame's size (it is
    shrunk to 192x192). Boxes carry the four facial landmarks; the score is the model's probability."""

    landmark_names = ("right_eye", "left_eye", "nose_tip", "mouth_centre")
    min_face_size = 10  # pixels of its 192x192 input
    # It needs the face's surroundings: in windows of 1.5 box sides (the Haar cascade's 0.75 each way) it missed a
    # third of the faces turned by 30 degrees, in windows of 2 none (benchmarks/bench_faces.py).
    search_radius = 1.0

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
            interpreter = self._interpreter_class(model_path=self.model_path, num_threads=1)
            interpreter.allocate_tensors()
            outputs = {detail["shape"][-1]: detail["index"] for detail in interpreter.get_output_details()}
            self._per_thread.interpreter = interpreter
            self._per_thread.indices = interpreter.get_input_details()[0]["index"], outputs[16], outputs[1]
        return self._per_thread.interpreter, self._per_thread.indices

    def search_scale(self, face_side: float) -> float:
        return 1.0  # the model shrinks every image to its input: a window shrunk first would only lose detail

    def __call__(self, image: np.ndarray, min_size: float = 0, max_size: float = float("inf")) -> list[Box]:
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
        if not len(candidates):
            return []
        regressed = interpreter.get_tensor(regressors_index)[0, candidates].astype(np.float64) / INPUT_SIZE
        scores = 1 / (1 + np.exp(-logits[candidates]))
        anchors = self.anchors[candidates]
        centres, sizes = regressed[:, :2] + anchors, regressed[:, 2:4]
        keypoints = regressed[:, 4 : 4 + 2 * FACIAL_KEYPOINTS].reshape(-1, FACIAL_KEYPOINTS, 2) + anchors[:, None]
        # detections as (x0, y0, x1, y1, keypoints...) in the input square's units, for the weighted merge
        corners = np.hstack([centres - sizes / 2, centres + sizes / 2, keypoints.reshape(len(candidates), -1)])
        boxes = []
        for score, merged in weighted_nms(corners, scores):
            x0, y0, x1, y1 = merged[:4] * side - [left, top, left, top]
            points = merged[4:].reshape(-1, 2) * side - [left, top]
            landmarks = tuple((float(x), float(y)) for x, y in points)
            box = Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0), score, landmarks)
            if min_size <= max(box.w, box.h) <= max_size:
                boxes.append(box)
        return boxes


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
