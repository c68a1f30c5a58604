"""Procedural faces for SynthAffect.

A face is drawn from an identity (shape, colours, hair, eye/brow/mouth sizes) and the intensities of the 12 ABAW
action units, each moving the region it moves on a real face (FACS). Coordinates are "face units": the unit square
is the aligned crop (x to the right, y down), face centred as in the official `cropped_aligned` images, so a rendering
*is* an aligned crop and the same drawing warped into a scene is the raw video frame. Everything is drawn with
OpenCV's anti-aliased primitives on 8-bit canvases (its only anti-aliased depth); shading is applied as multiplicative
maps.

The rest positions of the facial features are the named constants below; horizontal ones are offsets from the
midline (mirrored for the two sides) and some scale with the identity (eye spacing, nose and mouth width). The AU
terms in the drawing functions say how far each action unit moves its feature from there.
"""

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ...tasks import AU

SUBPIXEL_SHIFT = 4  # fixed-point bits for OpenCV's sub-pixel drawing
# Drawn at twice the size, then averaged down: OpenCV's anti-aliased fill grows shapes by about half a pixel,
# which would swallow thin features (a parted lip, a narrowed eye) at crop size.
_SUPERSAMPLE = 2
_AA = cv2.LINE_AA

# -- layout of the aligned face, in face units -------------------------------------------------------------------------
MIDLINE_X = 0.5  # the face is centred horizontally in the crop
FACE_CENTRE_Y = 0.50  # centre of the face oval
FACE_TOP = 0.36  # centre-to-top distance of the oval (its top is under the hair)
TEMPLE_Y = 0.34  # where the hair meets the side of the face
EAR_X = 0.98  # ear centres, as a fraction of the face's half-width
EAR_Y = 0.46
EAR_AXES = (0.03, 0.06)
NECK_HALF_WIDTH = 0.6  # as a fraction of the face's half-width
NECK_TOP_Y, NECK_BOTTOM_Y = 0.7, 0.97  # the neck's sides; its bottom centre is the crop's lower edge
NECK_FLARE = 1.05  # the neck widens this much toward the shoulders
# hair: its crown (top) and how far it stands out beside the face; curly hair is fuller
HAIR_TOP_Y, CURLY_HAIR_TOP_Y = 0.07, 0.03
HAIR_MARGIN, CURLY_HAIR_MARGIN = 0.025, 0.05
LONG_HAIR_BOTTOM_Y = 0.92
LONG_HAIR_SPREAD = 0.02  # long hair falls this much wider than the crown
HIGHEST_HAIRLINE_Y, LOWEST_HAIRLINE_Y = 0.19, 0.225  # clear of the brows at their highest (AU1 + AU2)
# brows: (offset from the midline, height) of the inner end, the peak and the outer end; the peak and the outer end
# follow the eyes (times the eye spacing)
BROW_INNER = (0.045, 0.357)
BROW_PEAK = (0.14, 0.335)
BROW_OUTER = (0.205, 0.35)
FOREHEAD_LINES_Y = (0.24, 0.265, 0.29)  # where AU1 and AU2 wrinkle the forehead
FOREHEAD_CENTRAL_SPAN = (0.0, 0.07)  # x offsets of the central lines (AU1) ...
FOREHEAD_LATERAL_SPAN = (0.08, 0.17)  # ... and of the lateral ones (AU2)
GLABELLA_LINE_X = 0.013  # the vertical creases between the brows (AU4)
GLABELLA_LINE_Y = (0.33, 0.38)
# eyes: centre offset (times the eye spacing), height, and lid sizes (times the eye size)
EYE_OFFSET_X = 0.12
EYE_Y = 0.43
EYE_HALF_WIDTH = 0.052
UPPER_LID_HEIGHT = 0.03
LOWER_LID_HEIGHT = 0.017
IRIS_RADIUS = 0.021
LID_CREASE_HEIGHT = 0.012  # the crease above the upper lid
LOWER_LID_FOLD_DEPTH = 0.018  # the fold below the lower lid (AU6, AU7)
CROWS_FEET_LENGTH = 0.03  # from the outer eye corner (AU6)
CHEEK_HIGHLIGHT = (0.14, 0.56)  # (offset, height) of the cheek's highlight, which AU6 and AU12 lift
CHEEK_HIGHLIGHT_AXES = (0.045, 0.03)
# nose: nostrils, the wing from the nostril up to the side of the nose, the tip's highlight (x offsets times the nose
# width); the nasolabial fold runs from beside the wing to past the mouth corner
NOSTRIL = (0.022, 0.598)
NOSTRIL_AXES = (0.011, 0.006)
NOSE_WING = ((0.012, 0.605), (0.045, 0.59), (0.034, 0.56))
NOSE_TIP_Y = 0.575
NASOLABIAL_FOLD_TOP = (0.05, 0.585)
# mouth: the line between the lips at rest, its half-width (times the mouth width), lip heights (times the lip
# thickness) and the shadow under the lower lip
MOUTH_Y = 0.695
MOUTH_HALF_WIDTH = 0.1
UPPER_LIP_HEIGHT = 0.02
LOWER_LIP_HEIGHT = 0.024
LIP_SHADOW_DEPTH = 0.035  # below the lower lip
# relief of the static shading: centres of the shaded and lit regions
RIM_HALF_HEIGHT = 0.37  # the rim darkens outside the oval of this half-height (and the face's half-width)
NOSE_SIDE = (0.04, 0.51)  # x times the nose width
NOSE_BRIDGE_Y = 0.50
CHEEKBONE = (0.15, 0.53)
UNDER_NOSE_Y = 0.62
UNDER_LIP_Y = 0.79

HAIR_STYLES = ("short", "long", "fringe", "curly", "bald")
HAIR_COLOURS = ((25, 20, 18), (55, 38, 26), (100, 68, 42), (185, 152, 95), (140, 62, 32), (150, 148, 145))
IRIS_COLOURS = ((70, 45, 25), (40, 28, 20), (60, 100, 140), (75, 105, 70))


@dataclass(frozen=True)
class FaceIdentity:
    """What stays fixed for one person: the per-video appearance variation of the dataset (sizes in face units,
    factors relative to the layout above)."""

    face_width: float  # half-width of the face oval
    face_length: float  # centre-to-chin distance
    jaw_taper: float  # how much the oval narrows toward the chin
    skin: tuple[int, int, int]
    lips: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: str
    hairline: float
    eye_size: float
    eye_spacing: float
    iris: tuple[int, int, int]
    gaze: tuple[float, float]
    brow_thickness: float
    brow_colour: tuple[int, int, int]
    nose_width: float
    mouth_width: float
    lip_thickness: float


def random_identity(rng: np.random.Generator) -> FaceIdentity:
    """Draw a person: skin from light to dark, one of several hair styles/colours, varied proportions."""
    tone = rng.uniform()
    skin = np.array([240, 205, 178]) * (1 - tone) + np.array([100, 66, 48]) * tone
    skin = skin * rng.uniform(0.95, 1.05) + rng.uniform(-4, 4, 3)
    lips = skin * np.array([0.78, 0.52, 0.52]) + np.array([25, 0, 5])
    hair = np.array(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]) * rng.uniform(0.85, 1.15)
    if abs(_luma(hair) - _luma(skin)) < 50:  # hair as bright as the skin would blur the head's outline
        hair = hair * 0.45
    brow = np.minimum(hair * 0.7, skin * 0.35)  # brows darker than the skin, whatever the hair
    return FaceIdentity(
        face_width=rng.uniform(0.26, 0.31),
        face_length=rng.uniform(0.34, 0.38),
        jaw_taper=rng.uniform(0.08, 0.3),
        skin=as_rgb(skin),
        lips=as_rgb(lips),
        hair=as_rgb(hair),
        hair_style=HAIR_STYLES[rng.integers(len(HAIR_STYLES))],
        hairline=rng.uniform(HIGHEST_HAIRLINE_Y, LOWEST_HAIRLINE_Y),
        eye_size=rng.uniform(0.85, 1.15),
        eye_spacing=rng.uniform(0.94, 1.06),
        iris=IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))],
        gaze=(rng.uniform(-0.006, 0.006), rng.uniform(-0.003, 0.003)),
        brow_thickness=rng.uniform(0.014, 0.024),
        brow_colour=as_rgb(brow),
        nose_width=rng.uniform(0.85, 1.2),
        mouth_width=rng.uniform(0.88, 1.12),
        lip_thickness=rng.uniform(0.8, 1.2),
    )


def rest_landmarks(identity: FaceIdentity) -> np.ndarray:
    """The face's landmarks at rest (`alignment.LANDMARKS`: eye centres, subject's right first, nose tip, middle of
    the mouth) in face units: where an aligner would put them, and what SynthAffect's crops are aligned on."""
    dx = EYE_OFFSET_X * identity.eye_spacing
    return np.array([[MIDLINE_X - dx, EYE_Y], [MIDLINE_X + dx, EYE_Y], [MIDLINE_X, NOSE_TIP_Y], [MIDLINE_X, MOUTH_Y]])


def au_vector(**intensities: float) -> np.ndarray:
    """AU intensities in registry order from keywords, e.g. `au_vector(AU12=1.0, AU6=0.5)`."""
    unknown = set(intensities) - set(AU.labels)
    if unknown:
        raise ValueError(f"Unknown action units {sorted(unknown)}; known: {', '.join(AU.labels)}")
    return np.array([intensities.get(name, 0.0) for name in AU.labels], dtype=np.float32)


def draw_face(identity: FaceIdentity, au: np.ndarray, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """Render the aligned face (RGB uint8, size x size) and its coverage (float32 alpha in [0, 1]).

    `au` holds the 12 intensities in `AU.labels` order, each in [0, 1].
    """
    a = dict(zip(AU.labels, np.clip(np.asarray(au, dtype=np.float32), 0, 1)))
    canvas = _Canvas(_SUPERSAMPLE * size)
    jaw = 0.04 * a["AU26"]
    face = _face_outline(identity, jaw)
    _draw_hair_back(canvas, identity)
    neck_x = NECK_HALF_WIDTH * identity.face_width
    neck = np.array(
        [
            [MIDLINE_X - neck_x, NECK_TOP_Y],
            [MIDLINE_X + neck_x, NECK_TOP_Y],
            [MIDLINE_X + neck_x * NECK_FLARE, NECK_BOTTOM_Y],
            [MIDLINE_X, 1.0],
            [MIDLINE_X - neck_x * NECK_FLARE, NECK_BOTTOM_Y],
        ]
    )
    canvas.fill(neck, shade(identity.skin, 0.78), alpha=True)
    for side in (-1, 1):
        ear = (MIDLINE_X + side * identity.face_width * EAR_X, EAR_Y)
        canvas.ellipse(ear, EAR_AXES, shade(identity.skin, 0.9), alpha=True)
    canvas.fill(face, identity.skin, alpha=True)
    canvas.rgb[:] = np.clip(canvas.rgb * _static_shading(identity, canvas.size), 0, 255).astype(np.uint8)
    _draw_brows(canvas, identity, a)
    _draw_eyes(canvas, identity, a)
    _draw_nose(canvas, identity, a)
    _draw_mouth(canvas, identity, a, jaw)
    canvas.apply_shading()
    _draw_hair_cap(canvas, identity)
    rgb = cv2.resize(canvas.rgb, (size, size), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(canvas.alpha, (size, size), interpolation=cv2.INTER_AREA)
    return rgb, alpha.astype(np.float32) / 255


class _Canvas:
    """An RGB + alpha canvas in face units, plus the wrinkle/shadow/highlight layers applied at the end."""

    def __init__(self, size: int):
        self.size = size
        self.rgb = np.zeros((size, size, 3), np.uint8)
        self.alpha = np.zeros((size, size), np.uint8)
        self.lines = np.zeros((size, size), np.uint8)  # thin darkening strokes (wrinkles, creases)
        self.shadow = np.zeros((size, size), np.uint8)  # soft darkening, blurred
        self.light = np.zeros((size, size), np.uint8)  # soft highlights, blurred

    def points(self, pts) -> np.ndarray:
        fixed_point = np.asarray(pts, np.float64) * self.size * (1 << SUBPIXEL_SHIFT)
        return np.round(fixed_point).astype(np.int32).reshape(-1, 1, 2)

    def px(self, value: float) -> int:
        return max(1, int(round(value * self.size)))

    def fill(self, pts, colour, image=None, alpha: bool = False) -> None:
        image = self.rgb if image is None else image
        cv2.fillPoly(image, [self.points(pts)], colour, _AA, SUBPIXEL_SHIFT)
        if alpha:
            cv2.fillPoly(self.alpha, [self.points(pts)], 255, _AA, SUBPIXEL_SHIFT)

    def stroke(self, pts, colour, width: float, image=None) -> None:
        image = self.rgb if image is None else image
        cv2.polylines(image, [self.points(pts)], False, colour, self.px(width), _AA, SUBPIXEL_SHIFT)

    def ellipse(self, centre, axes, colour, image=None, alpha: bool = False, angle: float = 0) -> None:
        image = self.rgb if image is None else image
        c = tuple(int(v) for v in self.points([centre]).ravel())
        ax = tuple(max(1, int(v)) for v in self.points([axes]).ravel())
        cv2.ellipse(image, c, ax, angle, 0, 360, colour, -1, _AA, SUBPIXEL_SHIFT)
        if alpha:
            cv2.ellipse(self.alpha, c, ax, angle, 0, 360, 255, -1, _AA, SUBPIXEL_SHIFT)

    def mask(self, pts) -> np.ndarray:
        m = np.zeros((self.size, self.size), np.uint8)
        cv2.fillPoly(m, [self.points(pts)], 255, _AA, SUBPIXEL_SHIFT)
        return m

    def blend(self, layer: np.ndarray, mask: np.ndarray) -> None:
        """Copy `layer` where `mask` covers (only its bounding box: eyes and mouth are small)."""
        x, y, w, h = cv2.boundingRect(mask)
        box = np.s_[y : y + h, x : x + w]
        weight = mask[box][..., None].astype(np.float32) / 255
        self.rgb[box] = (self.rgb[box] * (1 - weight) + layer[box] * weight + 0.5).astype(np.uint8)

    def apply_shading(self) -> None:
        lines = cv2.GaussianBlur(self.lines.astype(np.float32) / 255, (0, 0), max(0.4, 0.004 * self.size))
        # the soft layers are blurred at a quarter of the size: as smooth, several times faster
        quarter = max(1, self.size // 4)
        soft = np.dstack([self.shadow, self.light]).astype(np.float32) / 255
        soft = cv2.resize(soft, (quarter, quarter), interpolation=cv2.INTER_AREA)
        soft = cv2.GaussianBlur(soft, (0, 0), max(0.5, 0.005 * self.size))
        soft = cv2.resize(soft, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        gain = (1 - 0.6 * np.clip(lines + soft[..., 0], 0, 1)) * (1 + 0.35 * soft[..., 1])
        self.rgb[:] = np.clip(self.rgb * gain[..., None], 0, 255).astype(np.uint8)


def as_rgb(colour) -> tuple[int, int, int]:
    """A colour as the integer RGB triple OpenCV draws with."""
    return tuple(int(v) for v in np.clip(np.round(colour), 0, 255))


def shade(colour, factor: float) -> tuple[int, int, int]:
    """`colour` darkened (factor < 1) or lightened."""
    return as_rgb(np.asarray(colour, np.float64) * factor)


def _luma(colour) -> float:
    return float(np.dot(colour, (0.299, 0.587, 0.114)))


def _opacity(value: float) -> int:
    return int(round(255 * min(max(value, 0.0), 1.0)))


def _face_outline(identity: FaceIdentity, jaw: float) -> np.ndarray:
    """Oval, narrower toward the chin; a jaw drop (AU26) lowers the lower half, most at the chin."""
    t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    below = np.clip(np.sin(t), 0, None)
    x = MIDLINE_X + identity.face_width * np.cos(t) * (1 - identity.jaw_taper * below**2)
    lower = FACE_CENTRE_Y + (identity.face_length + jaw) * np.sin(t)
    y = np.where(np.sin(t) > 0, lower, FACE_CENTRE_Y + FACE_TOP * np.sin(t))
    return np.stack([x, y], 1)


@functools.lru_cache(maxsize=8)
def _static_shading(identity: FaceIdentity, size: int) -> np.ndarray:
    """Gains that give the flat face relief: darker rim and eye sockets, nose sides, shadow under the nose."""
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    rim = ((x - MIDLINE_X) / identity.face_width) ** 2 + ((y - FACE_CENTRE_Y) / RIM_HALF_HEIGHT) ** 2
    gain = 1 - 0.3 * np.clip(rim - 0.45, 0, 1)

    def blob(cx, cy, sx, sy, depth):
        return depth * np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))

    dx = EYE_OFFSET_X * identity.eye_spacing
    for side in (-1, 1):
        gain -= blob(MIDLINE_X + side * dx, EYE_Y - 0.01, 0.06, 0.035, 0.35)  # eye socket
        nose_x = MIDLINE_X + side * NOSE_SIDE[0] * identity.nose_width
        gain -= blob(nose_x, NOSE_SIDE[1], 0.012, 0.06, 0.16)  # side of the nose
        gain += blob(MIDLINE_X + side * CHEEKBONE[0], CHEEKBONE[1], 0.04, 0.03, 0.12)  # cheekbone
    gain += blob(MIDLINE_X, NOSE_BRIDGE_Y, 0.012, 0.06, 0.18)  # nose bridge
    gain -= blob(MIDLINE_X, UNDER_NOSE_Y, 0.04, 0.012, 0.15)  # under the nose
    gain -= blob(MIDLINE_X, UNDER_LIP_Y, 0.05, 0.015, 0.1)  # under the lower lip
    return gain[..., None]


def _hair_outline(identity: FaceIdentity) -> np.ndarray:
    """Upper arc of the head's hair from the left temple over the top to the right temple."""
    curly = identity.hair_style == "curly"
    w = identity.face_width + (CURLY_HAIR_MARGIN if curly else HAIR_MARGIN)
    radius = FACE_CENTRE_Y - (CURLY_HAIR_TOP_Y if curly else HAIR_TOP_Y)
    alpha = np.arcsin((FACE_CENTRE_Y - TEMPLE_Y) / radius)
    t = np.linspace(np.pi + alpha, 2 * np.pi - alpha, 60)
    wave = 1 + (0.025 * np.abs(np.sin(18 * t)) if curly else 0)
    return np.stack([MIDLINE_X + w * wave * np.cos(t), FACE_CENTRE_Y + radius * wave * np.sin(t)], 1)


def _draw_hair_back(canvas: _Canvas, identity: FaceIdentity) -> None:
    """Hair behind the head (shows beside the temples), down to the shoulders for long hair."""
    if identity.hair_style == "bald":
        return
    outline = _hair_outline(identity)
    if identity.hair_style == "long":
        left, right = outline[0, 0] - LONG_HAIR_SPREAD, outline[-1, 0] + LONG_HAIR_SPREAD
        outline = np.concatenate([outline, [[right, LONG_HAIR_BOTTOM_Y], [left, LONG_HAIR_BOTTOM_Y]]])
    canvas.fill(outline, shade(identity.hair, 0.85), alpha=True)


def _draw_hair_cap(canvas: _Canvas, identity: FaceIdentity) -> None:
    """Hair over the forehead, down to a hairline that stays clear of the highest brow position (so AU1/AU2 are
    never hidden)."""
    if identity.hair_style == "bald":
        return
    arc = _hair_outline(identity)
    xs = np.linspace(arc[-1, 0], arc[0, 0], 31)
    u = (xs - MIDLINE_X) / (arc[-1, 0] - MIDLINE_X)
    top = identity.hairline
    if identity.hair_style == "fringe":  # low, jagged, still above the brows
        top = LOWEST_HAIRLINE_Y + 0.008 * (np.arange(len(xs)) % 2) * (1 - u**4)
    hairline = top + (TEMPLE_Y - top) * u**4
    canvas.fill(np.concatenate([arc, np.stack([xs, hairline], 1)]), identity.hair, alpha=True)


def _bezier(p0, peak, p2, n: int = 16) -> np.ndarray:
    """Quadratic curve from p0 to p2 passing through `peak` at its middle."""
    p0, peak, p2 = (np.asarray(p, np.float64) for p in (p0, peak, p2))
    ctrl = 2 * peak - (p0 + p2) / 2
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * ctrl + t**2 * p2


def _draw_brows(canvas: _Canvas, identity: FaceIdentity, a: dict) -> None:
    """AU1 lifts the inner ends, AU2 the outer ends (both wrinkle the forehead); AU4 lowers the brows and pulls
    them together, creasing the skin between them."""
    au1, au2, au4 = a["AU1"], a["AU2"], a["AU4"]
    spacing = identity.eye_spacing
    for side in (-1, 1):
        inner = (MIDLINE_X + side * (BROW_INNER[0] - 0.018 * au4), BROW_INNER[1] - 0.038 * au1 + 0.03 * au4)
        peak = (MIDLINE_X + side * BROW_PEAK[0] * spacing, BROW_PEAK[1] - 0.02 * au1 - 0.035 * au2 + 0.022 * au4)
        outer = (MIDLINE_X + side * BROW_OUTER[0] * spacing, BROW_OUTER[1] - 0.038 * au2 + 0.015 * au4)
        centre = _bezier(inner, peak, outer)
        half = identity.brow_thickness * np.linspace(0.6, 0.3, len(centre))[:, None]
        canvas.fill(np.concatenate([centre - [0, 1] * half, (centre + [0, 1] * half)[::-1]]), identity.brow_colour)
        for k, y in enumerate(FOREHEAD_LINES_Y):  # forehead lines: central from AU1, lateral from AU2
            reach = FOREHEAD_CENTRAL_SPAN[1]
            xs = MIDLINE_X + side * np.linspace(*FOREHEAD_CENTRAL_SPAN, 5)
            canvas.stroke(
                np.stack([xs, y + 0.004 * ((xs - MIDLINE_X) / reach) ** 2], 1),
                _opacity(0.55 * au1),
                0.006,
                canvas.lines,
            )
            reach = FOREHEAD_LATERAL_SPAN[1]
            xs = MIDLINE_X + side * np.linspace(*FOREHEAD_LATERAL_SPAN, 6)
            canvas.stroke(
                np.stack([xs, y + 0.01 * k / 2 + 0.015 * ((xs - MIDLINE_X) / reach) ** 2], 1),
                _opacity(0.55 * au2),
                0.006,
                canvas.lines,
            )
        x = MIDLINE_X + side * GLABELLA_LINE_X
        top, bottom = GLABELLA_LINE_Y
        canvas.stroke(
            [[x, top + 0.02 * au4], [x + side * 0.004, bottom + 0.02 * au4]], _opacity(0.8 * au4), 0.007, canvas.lines
        )


def _eye_shape(identity: FaceIdentity, a: dict, side: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Upper and lower lid curves (inner to outer corner). AU7 tightens both lids; AU6 pushes the lower lid up."""
    cx = MIDLINE_X + side * EYE_OFFSET_X * identity.eye_spacing
    half_w = EYE_HALF_WIDTH * identity.eye_size
    upper = UPPER_LID_HEIGHT * identity.eye_size * (1 - 0.5 * a["AU7"] - 0.2 * a["AU6"])
    lower = LOWER_LID_HEIGHT * identity.eye_size * max(0.15, 1 - 0.6 * a["AU7"] - 0.6 * a["AU6"])
    s = np.linspace(-1, 1, 21)
    x = cx + side * s * half_w
    tilt = -0.004 * s  # outer corner a little higher
    top = np.stack([x, EYE_Y + tilt - upper * (1 - s**2) ** 0.7], 1)
    bottom = np.stack([x, EYE_Y + tilt + lower * (1 - s**2) ** 0.9], 1)
    return top, bottom, (cx, half_w)


def _draw_eyes(canvas: _Canvas, identity: FaceIdentity, a: dict) -> None:
    """White, iris and pupil clipped to the lids, lash line and creases; AU6 also adds crow's feet, lifts the cheek
    highlight and bunches the skin under the eye."""
    layer = canvas.rgb.copy()
    mask = np.zeros_like(canvas.alpha)
    r = IRIS_RADIUS * identity.eye_size
    for side in (-1, 1):
        top, bottom, (cx, half_w) = _eye_shape(identity, a, side)
        outline = np.concatenate([top, bottom[::-1]])
        mask |= canvas.mask(outline)
        canvas.fill(outline, (228, 226, 220), layer)
        iris = (cx + identity.gaze[0], EYE_Y - 0.002 + identity.gaze[1])
        canvas.ellipse(iris, (r, r), identity.iris, layer)
        canvas.ellipse(iris, (0.42 * r, 0.42 * r), (15, 12, 12), layer)
        canvas.ellipse((iris[0] - 0.3 * r, iris[1] - 0.35 * r), (0.18 * r, 0.18 * r), (245, 245, 245), layer)
    canvas.blend(layer, mask)
    for side in (-1, 1):
        top, bottom, (cx, half_w) = _eye_shape(identity, a, side)
        canvas.stroke(top, (30, 24, 24), 0.011)  # lash line
        canvas.stroke(bottom, shade(identity.skin, 0.55), 0.005)
        canvas.stroke(top + [0, -LID_CREASE_HEIGHT], _opacity(0.4), 0.006, canvas.lines)  # lid crease
        tight = max(a["AU6"], 0.7 * a["AU7"])  # lower-lid bulge / cheek fold
        fold = bottom[3:-3] + [0, LOWER_LID_FOLD_DEPTH - 0.006 * a["AU6"]]
        canvas.stroke(fold, _opacity(0.15 + 0.5 * tight), 0.006, canvas.lines)
        corner = np.array([cx + side * (half_w + 0.012), EYE_Y])
        for angle in (-0.45, 0.0, 0.45):  # crow's feet from AU6
            tip = corner + CROWS_FEET_LENGTH * np.array([side * np.cos(angle), np.sin(angle)])
            canvas.stroke([corner, tip], _opacity(0.65 * a["AU6"]), 0.005, canvas.lines)
        # AU6 lifts the cheeks: the highlight moves up and the skin below the eye bunches
        canvas.ellipse(
            (MIDLINE_X + side * CHEEK_HIGHLIGHT[0], CHEEK_HIGHLIGHT[1] - 0.035 * a["AU6"] - 0.012 * a["AU12"]),
            CHEEK_HIGHLIGHT_AXES,
            _opacity(0.35 + 0.5 * a["AU6"]),
            canvas.light,
        )
        canvas.ellipse(
            (MIDLINE_X + side * EYE_OFFSET_X * identity.eye_spacing, EYE_Y + 0.035 - 0.01 * a["AU6"]),
            (0.04, 0.008),
            _opacity(0.6 * a["AU6"]),
            canvas.shadow,
        )


def _mouth_corners(identity: FaceIdentity, a: dict) -> tuple[float, float]:
    """Half-width and vertical offset of the lip corners: AU12 pulls them up and out, AU15 down, AU23/AU24 in."""
    half = MOUTH_HALF_WIDTH * identity.mouth_width * (1 + 0.22 * a["AU12"] - 0.08 * a["AU23"] - 0.15 * a["AU24"])
    dy = -0.032 * a["AU12"] + 0.03 * a["AU15"]
    return half, dy


def _draw_nose(canvas: _Canvas, identity: FaceIdentity, a: dict) -> None:
    """Nostrils and wings; AU10 lifts and widens them and deepens the nasolabial folds."""
    lift = 0.01 * a["AU10"]
    w = identity.nose_width * (1 + 0.12 * a["AU10"])
    for side in (-1, 1):
        nostril = (MIDLINE_X + side * NOSTRIL[0] * w, NOSTRIL[1] - lift)
        canvas.ellipse(nostril, (NOSTRIL_AXES[0] * w, NOSTRIL_AXES[1]), (45, 30, 30), angle=side * 15)
        wing = _bezier(*[(MIDLINE_X + side * x * w, y - lift) for x, y in NOSE_WING], 8)
        canvas.stroke(wing, _opacity(0.7), 0.006, canvas.lines)
        half, dy = _mouth_corners(identity, a)
        fold = _bezier(
            (MIDLINE_X + side * NASOLABIAL_FOLD_TOP[0] * w, NASOLABIAL_FOLD_TOP[1] - lift),
            (MIDLINE_X + side * (half + 0.015), MOUTH_Y - 0.045 + dy / 2),
            (MIDLINE_X + side * (half + 0.022), MOUTH_Y + 0.02 + dy),
            10,
        )
        strength = max(a["AU12"], a["AU10"], 0.6 * a["AU6"])
        canvas.stroke(fold, _opacity(0.15 + 0.6 * strength), 0.007, canvas.lines)
    canvas.ellipse((MIDLINE_X, NOSE_TIP_Y - lift), (0.018 * w, 0.014), _opacity(0.5), canvas.light)


def _draw_mouth(canvas: _Canvas, identity: FaceIdentity, a: dict, jaw: float) -> None:
    """Lips around a centre line whose ends are the corners. AU10 raises the upper lip (the centre most),
    AU23/AU24 thin and press the lips (AU24 closes them), AU25 parts the lips, AU26 drops the jaw and lower lip."""
    half, dy = _mouth_corners(identity, a)
    thick = identity.lip_thickness * (1 - 0.5 * a["AU23"] - 0.55 * a["AU24"]) * (1 - 0.2 * a["AU12"])
    press = 1 - a["AU24"]
    gap = press * (0.035 * a["AU25"] + 0.012 * a["AU10"])
    s = np.linspace(-1, 1, 25)
    x = MIDLINE_X + s * half
    base = MOUTH_Y + dy * s**2
    bulge = (1 - s**2) ** 0.5
    upper_inner = base - (0.35 * gap + 0.012 * a["AU10"] * press) * (1 - s**2)
    lower_inner = base + (0.65 * gap + 0.8 * jaw * max(press, 0.3)) * (1 - s**2) ** 0.7
    bow = 1 - 0.35 * np.exp(-((s / 0.12) ** 2))  # cupid's bow
    upper_outer = upper_inner - UPPER_LIP_HEIGHT * thick * bulge * bow - 0.014 * a["AU10"] * (1 - s**2)
    lower_outer = lower_inner + LOWER_LIP_HEIGHT * thick * bulge
    canvas.fill(np.concatenate([np.stack([x, upper_outer], 1), np.stack([x, lower_outer], 1)[::-1]]), identity.lips)
    canvas.fill(
        np.concatenate([np.stack([x, upper_outer], 1), np.stack([x, upper_inner], 1)[::-1]]),
        shade(identity.lips, 0.85),
    )
    opening = np.concatenate([np.stack([x, upper_inner], 1), np.stack([x, lower_inner], 1)[::-1]])
    if np.max(lower_inner - upper_inner) > 0.003:
        layer = canvas.rgb.copy()
        canvas.fill(opening, (55, 22, 28), layer)
        # upper teeth fill part of the opening: the mouth still reads as a dark band (as face detectors expect)
        teeth = upper_inner + np.minimum(0.3 * (lower_inner - upper_inner), 0.01)
        canvas.fill(
            np.concatenate([np.stack([x, upper_inner - 0.01], 1), np.stack([x, teeth], 1)[::-1]]),
            (215, 210, 196),
            layer,
        )
        canvas.blend(layer, canvas.mask(opening))
    else:  # closed lips: the dark line between them, heavier when pressed
        canvas.stroke(np.stack([x, (upper_inner + lower_inner) / 2], 1)[2:-2], (70, 35, 38), 0.006 + 0.004 * a["AU24"])
    for side in (-1, 1):  # corner dimples (AU24 press, AU15 pull-down lines)
        corner = np.array([MIDLINE_X + side * half, MOUTH_Y + dy])
        canvas.stroke(
            [corner + [side * 0.008, -0.012], corner + [side * 0.01, 0.012]],
            _opacity(0.6 * a["AU24"]),
            0.006,
            canvas.lines,
        )
        canvas.stroke(
            [corner + [side * 0.004, 0.01], corner + [side * 0.012, 0.05]],
            _opacity(0.6 * a["AU15"]),
            0.006,
            canvas.lines,
        )
    shadow_y = lower_outer.max() + LIP_SHADOW_DEPTH
    canvas.ellipse((MIDLINE_X, shadow_y), (0.045, 0.012), _opacity(0.3 + 0.4 * a["AU24"]), canvas.shadow)
