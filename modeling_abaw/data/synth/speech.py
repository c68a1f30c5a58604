"""The voice of a SynthAffect subject: voiced, speech-like audio whose prosody carries valence and arousal."""

import numpy as np
from scipy.ndimage import uniform_filter1d

VOWELS = ((750, 1200), (500, 1900), (300, 2300), (450, 850), (320, 800))  # (F1, F2) Hz of a, e, i, o, u


def synthesize_speech(
    va: np.ndarray, fps: float, sample_rate: int = 16000, rng: np.random.Generator | None = None, f0: float = 120.0
) -> np.ndarray:
    """Voiced, speech-like audio (float32 mono in [-1, 1]) carrying the affect of `va` ((T, 2) valence, arousal).

    Arousal raises pitch, loudness and syllable rate; valence raises pitch a little and brightens the spectrum.
    Harmonics of a gliding f0 are shaped by per-syllable vowel formants, in phrases separated by pauses.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    num_samples = int(round(len(va) / fps * sample_rate))
    t = np.arange(num_samples) / sample_rate
    frame_times = (np.arange(len(va)) + 0.5) / fps
    valence, arousal = (np.interp(t, frame_times, va[:, k]) for k in range(2))
    syllables = np.cumsum(3.0 + 1.5 * (arousal + 1)) / sample_rate  # 3 to 6 syllables per second
    within = syllables % 1
    index = syllables.astype(np.int64)
    vowel = np.array(VOWELS, np.float64)[rng.integers(len(VOWELS), size=index[-1] + 1)]
    f1, f2 = vowel[index, 0], vowel[index, 1]
    accent = (0.1 + 0.1 * (arousal + 1)) * np.sin(np.pi * within)  # rise-fall within a syllable, wider when aroused
    pitch = f0 * 2 ** (0.6 * arousal + 0.15 * valence + accent)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    tilt = 1.7 - 0.45 * arousal - 0.35 * valence  # spectral slope: brighter when aroused or positive
    # harmonic amplitudes change slowly: compute them at ~1 kHz and hold them between control points
    hop = max(1, sample_rate // 1000)
    harmonics = np.arange(1, 41)[:, None]
    freq = harmonics * pitch[::hop]
    formants = 1 / (1 + ((freq - f1[::hop]) / 90) ** 2) + 0.7 / (1 + ((freq - f2[::hop]) / 140) ** 2) + 0.05
    amplitude = harmonics ** -tilt[::hop] * formants * (freq < 0.45 * sample_rate)
    amplitude /= np.sqrt((amplitude**2).sum(0))  # unit power: brightness changes the timbre, not the loudness
    voiced = np.zeros(num_samples)
    step = 1000 * hop  # one second at a time keeps memory small
    for s in range(0, num_samples, step):
        part = slice(s, s + step)
        held = np.repeat(amplitude[:, s // hop : (s + step) // hop], hop, axis=1)[:, : len(voiced[part])]
        voiced[part] = (held * np.sin(harmonics * phase[part])).sum(0)
    noise = rng.standard_normal(num_samples)
    syllable_env = np.sin(np.pi * within) ** 0.6
    consonant = noise * np.exp(-within * 30) * 0.3
    loudness = 0.15 * 10 ** (0.45 * arousal)  # +-9 dB
    speech = (voiced * syllable_env + consonant) * loudness * _phrase_gate(num_samples, sample_rate, rng)
    return np.clip(speech + 0.002 * noise[::-1], -1, 1).astype(np.float32)


def _phrase_gate(num_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """1 while speaking, 0 in pauses between phrases, with 20 ms ramps."""
    gate = np.zeros(num_samples)
    s = int(rng.uniform(0, 0.3) * sample_rate)
    while s < num_samples:
        length = int(rng.uniform(1.2, 3.5) * sample_rate)
        gate[s : s + length] = 1
        s += length + int(rng.uniform(0.2, 0.7) * sample_rate)
    return uniform_filter1d(gate, max(1, sample_rate // 50))
