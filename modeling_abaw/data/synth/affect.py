"""The affect of a SynthAffect subject over time: expression episodes, the action units that show them, and
valence/arousal, including a slow drift that the face does not show (only the voice carries it).

Expressions are EMFACS-style prototype AU combinations with onset-apex-offset dynamics, plus spontaneous AUs;
valence/arousal follow the expression on Russell's circumplex.
"""

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ...tasks import AU, EXPR

AU_THRESHOLD = 0.5  # an AU is labelled present when its intensity reaches this
# A segment's expression is labelled once its envelope reaches this; prototype AUs have weight >= 0.8, so
# 0.8 * 0.65 > AU_THRESHOLD: whenever a basic expression is labelled, its prototype AUs are labelled too.
EXPR_THRESHOLD = 0.65
# EMFACS-style prototypes: alternative AU combinations per expression (a segment uses one). Fear's AU20 and
# Disgust's AU9 are not among the 12 ABAW AUs, hence 1+2+4+7+25 and 10+15(+25).
PROTOTYPES: dict[str, tuple[tuple[str, ...], ...]] = {
    "Neutral": ((),),
    "Anger": (("AU4", "AU7", "AU23"), ("AU4", "AU7", "AU24")),
    "Disgust": (("AU10", "AU15"), ("AU10", "AU15", "AU25")),
    "Fear": (("AU1", "AU2", "AU4", "AU7", "AU25"),),
    "Happiness": (("AU6", "AU12"), ("AU6", "AU12", "AU25")),
    "Sadness": (("AU1", "AU4", "AU15"),),
    "Surprise": (("AU1", "AU2", "AU25", "AU26"),),
}
# (valence, arousal) at full intensity, after Russell's circumplex; "Other" draws its own point per segment.
CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "Neutral": (0.0, 0.0),
    "Anger": (-0.65, 0.7),
    "Disgust": (-0.7, 0.3),
    "Fear": (-0.6, 0.8),
    "Happiness": (0.8, 0.45),
    "Sadness": (-0.7, -0.45),
    "Surprise": (0.25, 0.85),
}
EXPR_WEIGHTS = {"Neutral": 0.28, "Other": 0.07}  # the six basic expressions share the rest
HIDDEN_DRIFT = (0.15, 0.3)  # std of the (valence, arousal) drift the face does not show


@dataclass(frozen=True)
class AffectTrack:
    """The ground truth of one subject over time. `hidden_va` is the part of `va` the face does not show."""

    au_intensity: np.ndarray  # (T, 12) float in [0, 1], in AU.labels order
    expression_intensity: np.ndarray  # (T,) envelope of the current segment's expression
    segment_expression: np.ndarray  # (T,) index into EXPR.labels of the current segment
    va: np.ndarray  # (T, 2) labels, in [-1, 1]
    hidden_va: np.ndarray  # (T, 2)

    @property
    def au(self) -> np.ndarray:
        """(T, 12) 0/1 AU labels."""
        return (self.au_intensity >= AU_THRESHOLD).astype(np.int64)

    @property
    def expr(self) -> np.ndarray:
        """(T,) expression labels: the segment's expression once strong enough, else Neutral."""
        neutral = EXPR.labels.index("Neutral")
        return np.where(self.expression_intensity >= EXPR_THRESHOLD, self.segment_expression, neutral)


def simulate_affect(num_frames: int, fps: float, rng: np.random.Generator) -> AffectTrack:
    """Expression segments of random length with smooth onset-apex-offset, prototype AUs plus spontaneous ones,
    and valence/arousal on the circumplex scaled by intensity plus a slow drift."""
    au_proto = np.zeros((num_frames, len(AU.labels)))
    envelope = np.zeros(num_frames)
    expression = np.zeros(num_frames, np.int64)
    face_va = np.zeros((num_frames, 2))
    names = list(EXPR.labels)
    basic = (1 - sum(EXPR_WEIGHTS.values())) / (len(names) - len(EXPR_WEIGHTS))
    weights = np.array([EXPR_WEIGHTS.get(name, basic) for name in names])
    start = 0
    while start < num_frames:
        stop = min(num_frames, start + max(3, int(rng.uniform(0.8, 3.0) * fps)))
        name = names[rng.choice(len(names), p=weights)]
        if name == "Other":
            aus, target = _unusual_combination(rng), rng.uniform(-0.6, 0.6, 2)
        else:
            alternatives = PROTOTYPES[name]
            aus, target = alternatives[rng.integers(len(alternatives))], np.array(CIRCUMPLEX[name])
        env = _envelope(stop - start, rng) * (rng.uniform(0.7, 1.0) if name != "Neutral" else 0.0)
        envelope[start:stop], expression[start:stop] = env, names.index(name)
        face_va[start:stop] = env[:, None] * target
        for au in aus:
            au_proto[start:stop, AU.labels.index(au)] = rng.uniform(0.8, 1.0) * env
        start = stop
    spontaneous = _spontaneous_aus(num_frames, fps, rng)
    intensity = 1 - (1 - au_proto) * (1 - spontaneous)  # either source can activate an AU
    # Sharpen around the label threshold (0.5 stays 0.5): an AU under ~0.3 hardly shows, one over 0.7 is near its
    # apex, so what is labelled present is what is visibly present.
    t = np.clip((intensity - 0.3) / 0.4, 0, 1)
    intensity = t * t * (3 - 2 * t)
    hidden = np.stack([_drift(num_frames, fps, rng) * s for s in HIDDEN_DRIFT], 1)
    return AffectTrack(
        au_intensity=intensity.astype(np.float32),
        expression_intensity=envelope.astype(np.float32),
        segment_expression=expression,
        va=np.clip(face_va + hidden, -1, 1).astype(np.float32),
        hidden_va=hidden.astype(np.float32),
    )


def _envelope(length: int, rng: np.random.Generator) -> np.ndarray:
    """Raised-cosine onset, flat apex, raised-cosine offset, peaking at 1."""
    onset = max(1, int(length * rng.uniform(0.15, 0.35)))
    offset = max(1, int(length * rng.uniform(0.15, 0.35)))
    t = np.arange(length, dtype=np.float64)
    up = np.clip((t + 1) / onset, 0, 1)
    down = np.clip((length - t) / offset, 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(up, down))


def _unusual_combination(rng: np.random.Generator) -> tuple[str, ...]:
    """2-3 AUs that neither contain a prototype nor fit inside one: the "Other" class."""
    prototypes = [set(p) for alts in PROTOTYPES.values() for p in alts if p]
    while True:
        aus = set(rng.choice(AU.labels, size=int(rng.integers(2, 4)), replace=False).tolist())
        if not any(p <= aus or aus <= p for p in prototypes):
            return tuple(sorted(aus, key=AU.labels.index))


def _spontaneous_aus(num_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Brief independent AU events (talking opens the lips most often), unrelated to the expression label."""
    out = np.zeros((num_frames, len(AU.labels)))
    t = np.arange(num_frames)
    for k, name in enumerate(AU.labels):
        rate = 0.2 if name == "AU25" else 0.05  # events per second
        for _ in range(rng.poisson(rate * num_frames / fps)):
            centre, width = rng.uniform(0, num_frames), rng.uniform(0.3, 1.5) * fps / 2
            bump = np.cos(np.clip((t - centre) / width, -1, 1) * np.pi / 2) ** 2
            out[:, k] = np.maximum(out[:, k], rng.uniform(0.3, 1.0) * bump)
    return out


def _drift(num_frames: int, fps: float, rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    """Unit-variance slow noise (white noise smoothed over a few seconds)."""
    sigma = seconds * fps / 2
    pad = int(4 * sigma)  # filter a longer noise so short clips get the full, stationary variance
    smooth = gaussian_filter1d(rng.standard_normal(num_frames + 2 * pad), sigma)[pad : pad + num_frames]
    return smooth * np.sqrt(2 * np.sqrt(np.pi) * sigma)  # std of gaussian-filtered unit white noise is 1 / this
