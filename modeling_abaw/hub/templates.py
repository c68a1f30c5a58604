"""The card templates of the top-level `model_cards/` folder, found where the package runs from."""

from importlib import resources
from pathlib import Path

from ..errors import InputError


def template_path(name: str) -> Path:
    """A card template: inside the installed package (`modeling_abaw/model_cards/`, see pyproject.toml), or in the
    top-level `model_cards/` of a source checkout (which an editable install or PYTHONPATH imports from)."""
    packaged = resources.files("modeling_abaw").joinpath("model_cards", name)
    if packaged.is_file():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / "model_cards" / name
    if source.is_file():
        return source
    raise InputError(
        f"the card template {name} is missing: neither {packaged} (installed package) nor {source} (source "
        "checkout) exists; reinstall modeling-abaw"
    )
