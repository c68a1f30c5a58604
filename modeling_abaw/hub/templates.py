"""The card templates of the top-level `model_cards/` folder."""

from pathlib import Path

from ..errors import InputError

TEMPLATES = Path(__file__).resolve().parents[2] / "model_cards"


def template_path(name: str) -> Path:
    path = TEMPLATES / name
    if not path.is_file():
        raise InputError(f"card template {name} not found in {TEMPLATES}")
    return path
