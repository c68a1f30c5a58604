"""SynthAffect: a procedural sanity dataset written in the exact Aff-Wild2 layout (see docs/CONVENTIONS.md).

Aff-Wild2 is licence-restricted, so every stage of the package (MAE pretraining, fine-tuning, audio + TMF fusion,
video inference with a face detector) is run and tested on this stand-in instead. It is a SANITY dataset: it checks
that the pipeline reads, learns and writes correctly; it says nothing about how well affect is recognised in the wild.

What is learnable, by construction:
  * faces follow FACS: each of the 12 action units moves its facial region (`faces.draw_face`);
  * expressions are EMFACS-style prototype AU combinations with onset-apex-offset dynamics, plus spontaneous AUs
    (`affect`);
  * valence/arousal follow the expression on Russell's circumplex, plus a slow drift that the face does NOT show
    but the voice does (pitch, loudness, syllable rate, brightness; `speech`), so fusing audio helps, as in the paper.

Modules: `affect` (the labels over time), `speech` (the voice), `faces` (drawing a face), `scene` (the raw frame
around it and the aligned crop cut from it), `writer` (the dataset on disk).
"""

from .affect import AU_THRESHOLD, CIRCUMPLEX, EXPR_THRESHOLD, PROTOTYPES, AffectTrack, simulate_affect
from .faces import FaceIdentity, au_vector, draw_face, random_identity, rest_landmarks
from .scene import Placement, paste_face, random_background
from .speech import synthesize_speech
from .writer import INFO_FILE, SynthAffectSummary, generate_synthaffect, is_synthaffect

__all__ = [
    "AU_THRESHOLD",
    "CIRCUMPLEX",
    "EXPR_THRESHOLD",
    "INFO_FILE",
    "PROTOTYPES",
    "AffectTrack",
    "FaceIdentity",
    "Placement",
    "SynthAffectSummary",
    "au_vector",
    "draw_face",
    "generate_synthaffect",
    "is_synthaffect",
    "paste_face",
    "random_background",
    "random_identity",
    "rest_landmarks",
    "simulate_affect",
    "synthesize_speech",
]
