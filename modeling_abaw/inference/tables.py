"""The per-frame prediction table as a CSV file: the one writer of `abaw predict` and the Gradio Space, so a table
downloaded from the Space is byte for byte the CSV `abaw predict` writes for the same input."""

from __future__ import annotations

import os

import pandas as pd

from ..io import atomic_path

# Decimals kept in the CSV: probabilities to 1e-6, timestamps to the microsecond (boxes are already at 0.1 px).
CSV_DECIMALS = 6


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write one input's prediction table (`AffectPipeline`'s DataFrame) to `path`, atomically."""
    with atomic_path(path) as temporary:
        table.round(CSV_DECIMALS).to_csv(temporary, index=False)
