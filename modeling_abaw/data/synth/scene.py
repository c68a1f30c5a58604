"""The raw video frames of SynthAffect: where a face sits and how it moves, the room behind it, the light, the torso,
the hand that sometimes hides it, pasting the drawn face in, and where its landmarks end up (from which the writer
cuts the aligned crop back out, by `modeling_abaw.alignment`'s rule)."""

from dataclasses import dataclass

import cv2
import numpy as np

from .faces import SUBPIXEL_SHIFT, as_rgb, shade

_AA = cv2.LINE_AA
NOISE_MARGIN = 32  # the sensor noise field is this much larger than a frame: each frame takes a random window of it
METERED_LUMA = 130  # the camera's exposure brings the faces' skin to about this brightness ...
EXPOSURE_RANGE = (0.8, 1.8)  # ... within these gains


@dataclass(frozen=True)
class Placement:
    """Where a face sits in a raw frame: centre of its aligned square (pixels), side length (pixels), tilt."""

    cx: float
    cy: float
    size: float
    angle: float  # degrees, counter-clockwise

    def to_frame(self) -> np.ndarray:
        """2x3 affine map from face units to frame pixels."""
        c, s = np.cos(np.radians(self.angle)), np.sin(np.radians(self.angle))
        rot = self.size * np.array([[c, s], [-s, c]])
        return np.hstack([rot, (np.array([self.cx, self.cy]) - rot @ [0.5, 0.5])[:, None]])

    def to_frame_points(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) points in face units (e.g. `faces.rest_landmarks`) -> frame pixels."""
        return np.asarray(points) @ self.to_frame()[:, :2].T + self.to_frame()[:, 2]


def head_motion(
    num_frames: int, fps: float, width: int, height: int, side: str, rng: np.random.Generator
) -> tuple[list[Placement], float]:
    """A slow head motion (wander, zoom, tilt) around a random rest placement: the placement of every frame, and the
    face's rest size in pixels. `side` is "left" or "right" for one of two people in the frame, "" for one person."""
    if side:  # two people side by side: smaller faces, less room to move
        base = (
            width * (0.27 if side == "left" else 0.73),
            height * rng.uniform(0.42, 0.52),
            min(height * rng.uniform(0.42, 0.52), width * 0.4),
        )
        reach = 0.03
    else:
        base = (width * rng.uniform(0.38, 0.62), height * rng.uniform(0.42, 0.52), height * rng.uniform(0.5, 0.66))
        reach = 0.07
    t = np.arange(num_frames) / fps
    x, y, zoom, tilt = (_wander(t, rng) for _ in range(4))
    angle0 = rng.uniform(-6, 6)
    placements = [
        Placement(
            base[0] + reach * width * x[i],
            base[1] + 0.6 * reach * height * y[i],
            base[2] * (1 + 0.04 * zoom[i]),
            angle0 + 5 * tilt[i],
        )
        for i in range(num_frames)
    ]
    return placements, base[2]


def _wander(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slow motion in [-1, 1]: two sinusoids with periods of several seconds."""
    periods, phases = rng.uniform(3, 12, 2), rng.uniform(0, 2 * np.pi, 2)
    return 0.5 * np.sin(2 * np.pi * t[:, None] / periods + phases).sum(1)


class Scene:
    """What stays fixed in one raw video: the room, the light falling on it and the camera's sensor noise.

    `expose` turns a drawn frame into what the camera records: lit, exposed for the faces (`meter`), with noise.
    """

    def __init__(self, rng: np.random.Generator, width: int, height: int):
        self.rng, self.width, self.height = rng, width, height
        self.background = random_background(rng, width, height)
        self.light = lighting_gradient(rng, width, height)
        # random windows into one noise field: drawing fresh gaussian noise per frame would dominate the run time
        margin = NOISE_MARGIN
        self.noise = rng.standard_normal((height + margin, width + margin, 3), dtype=np.float32) * rng.uniform(1.5, 4)

    def meter(self, skins, placements) -> None:
        """Auto-exposure: like a camera metering on the faces (skin colours at their placements), so that dark skin
        is not lost in the shadows."""
        lit_skin = [
            np.dot(skin, (0.299, 0.587, 0.114)) * self.light[int(p.cy), int(p.cx), 0]
            for skin, p in zip(skins, placements)
        ]
        face_luma = np.mean(lit_skin)
        self.light = self.light * np.clip(METERED_LUMA / face_luma, *EXPOSURE_RANGE)

    def expose(self, frame: np.ndarray) -> np.ndarray:
        """The recorded frame (uint8) of a drawn one."""
        dy, dx = self.rng.integers(0, NOISE_MARGIN, 2)
        noise = self.noise[dy : dy + self.height, dx : dx + self.width]
        return np.clip(frame * self.light + noise + 0.5, 0, 255).astype(np.uint8)


def random_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A room: textured wall and floor, a few framed rectangles (windows, pictures, shelves)."""
    wall = rng.uniform(60, 210) * (1 + rng.uniform(-0.25, 0.25, 3))  # a grey with a tint
    floor = wall * rng.uniform(0.5, 0.9)
    horizon = int(height * rng.uniform(0.65, 0.9))
    image = np.empty((height, width, 3), np.float32)
    image[:horizon], image[horizon:] = wall, floor
    coarse = rng.normal(0, rng.uniform(4, 14), (height // 24 + 2, width // 24 + 2, 1)) * [1, 1, 1]
    coarse += rng.normal(0, 2, coarse.shape)  # blotches of shade, barely of colour
    image += cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 3, (height, width, 1)).astype(np.float32)  # fine texture, fixed per video
    canvas = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(1, 4)):
        w, h = rng.integers(width // 8, width // 3), rng.integers(height // 8, height // 3)
        x, y = rng.integers(0, width - w), rng.integers(0, horizon - h // 2)
        colour = as_rgb(rng.uniform(30, 240, 3))
        cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1, _AA)
        cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), shade(colour, 0.5), 2, _AA)
    return canvas


def lighting_gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A linear illumination ramp in a random direction (gains around 1), applied to the whole frame."""
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = ((x - width / 2) * np.cos(angle) + (y - height / 2) * np.sin(angle)) / max(width, height)
    return (rng.uniform(0.9, 1.1) + rng.uniform(0.2, 0.5) * ramp)[..., None].astype(np.float32)


def draw_torso(frame: np.ndarray, placement: Placement, colour) -> None:
    """Shoulders below the face (they do not tilt with the head)."""
    s, height = placement.size, frame.shape[0]
    bx, by = placement.to_frame() @ [0.5, 0.9, 1.0]  # the base of the neck, in face units
    pts = np.array(
        [
            [bx - 0.2 * s, by],
            [bx + 0.2 * s, by],
            [bx + 0.55 * s, by + 0.17 * s],
            [bx + 0.6 * s, height],
            [bx - 0.6 * s, height],
            [bx - 0.55 * s, by + 0.17 * s],
        ]
    )
    fixed_point = np.round(pts * (1 << SUBPIXEL_SHIFT)).astype(np.int32)
    cv2.fillPoly(frame, [fixed_point], as_rgb(colour), _AA, SUBPIXEL_SHIFT)


def paste_face(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, placement: Placement) -> None:
    """Warp an aligned rendering into the frame (premultiplied alpha, only over its bounding box)."""
    height, width = frame.shape[:2]
    n = rgb.shape[0]
    affine = placement.to_frame()
    affine[:, :2] /= n  # rendering pixels -> frame pixels
    corners = np.array([[0, 0], [n, 0], [0, n], [n, n]]) @ affine[:, :2].T + affine[:, 2]
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, [width, height])
    if x1 <= x0 or y1 <= y0:
        return
    premultiplied = np.dstack([rgb.astype(np.float32) * alpha[..., None], alpha])
    shifted = affine - [[0, 0, x0], [0, 0, y0]]
    warped = cv2.warpAffine(premultiplied, shifted, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR)
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - warped[..., 3:]) + warped[..., :3] + 0.5, 0, 255).astype(np.uint8)


def draw_occluder(frame: np.ndarray, placement: Placement, colour) -> None:
    """A hand over the face (centred a little left of and below the nose): why a frame has no detected face and so
    no aligned crop."""
    one = 1 << SUBPIXEL_SHIFT
    cx, cy = placement.to_frame() @ [0.45, 0.58, 1.0]
    axes = (int(0.3 * placement.size * one), int(0.24 * placement.size * one))
    cv2.ellipse(frame, (int(cx * one), int(cy * one)), axes, 20, 0, 360, as_rgb(colour), -1, _AA, SUBPIXEL_SHIFT)
