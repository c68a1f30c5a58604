"""Print pip constraints pinning each dependency of pyproject.toml (core and every extra) to its lower bound:
`make test-lowest` installs the package with them, so every lower bound the ranges state is the version tested, and
the packages they need come at their newest fitting releases."""

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
lines = [*project["dependencies"], *(line for extra in project["optional-dependencies"].values() for line in extra)]
for line in lines:
    requirement = Requirement(line)
    lower = [spec.version for spec in requirement.specifier if spec.operator in (">=", "==", "~=")]
    if not lower:
        sys.exit(f"pyproject.toml: {line!r} has no lower bound")
    marker = f"; {requirement.marker}" if requirement.marker else ""
    print(f"{requirement.name}=={lower[0]}{marker}")
