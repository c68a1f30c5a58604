"""The installed environment against the package's declared dependencies: what `abaw env` prints for a bug report,
and the one-line message when a command needs an extra that is not installed.

The declared dependencies are read from the installed distribution's metadata (`importlib.metadata.requires`), which
is `pyproject.toml`'s `[project]` tables as built: the ranges there are the tested ranges (a lower bound the suite has
passed on, an upper bound only where a release broke the package), so this module never repeats them.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .machine import cpu_flags, cpu_model, usable_cores

DISTRIBUTION = "modeling-abaw"
# The packages a bug report names first (the ones that have moved results or broken paths before); every other
# declared dependency follows them.
REPORTED_FIRST = (
    "torch",
    "transformers",
    "accelerate",
    "huggingface-hub",
    "datasets",
    "safetensors",
    "av",
    "opencv-python-headless",
    "ai-edge-litert",
    "onnxruntime",
    "gradio",
)
# CPU features that decide the encoder paths (bf16 and int8 kernels) and move results between machines.
REPORTED_CPU_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX512-VNNI",
    "avx512_bf16": "AVX512-BF16",
    "amx_tile": "AMX",
    "amx_bf16": "AMX-BF16",
}


@dataclass(frozen=True)
class Dependency:
    """One declared dependency and what is installed of it.

    Attributes:
        requirement: as declared (name, tested range, markers).
        extra: the extra that declares it, or None for a core dependency.
        installed: the installed version, or None.
    """

    requirement: Requirement
    extra: str | None
    installed: str | None

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def applies(self) -> bool:
        """Its platform markers hold here (an extra's own marker aside)."""
        marker = self.requirement.marker
        return marker is None or marker.evaluate({"extra": self.extra or ""})

    @property
    def in_range(self) -> bool | None:
        """Whether the installed version lies in the tested range (None when it is not installed)."""
        if self.installed is None:
            return None
        try:
            return self.requirement.specifier.contains(Version(self.installed), prereleases=True)
        except InvalidVersion:
            return False


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def declared_dependencies() -> list[Dependency]:
    """Every dependency the installed package declares, core first, then each extra's (empty when the package runs
    from a source folder without being installed)."""
    try:
        lines = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    extras = package_extras()
    dependencies = []
    for line in lines:
        requirement = Requirement(line)
        dependencies.append(
            Dependency(requirement, _declaring_extra(requirement, extras), installed_version(requirement.name))
        )
    return dependencies


def _declaring_extra(requirement: Requirement, extras: list[str]) -> str | None:
    """The extra whose marker selects `requirement` (`extra == "train"`), or None for a core dependency (one whose
    marker, a platform's, holds or fails whatever the extra)."""
    marker = requirement.marker
    if marker is None or marker.evaluate({"extra": ""}):
        return None
    return next((extra for extra in extras if marker.evaluate({"extra": extra})), None)


def package_extras() -> list[str]:
    try:
        return importlib.metadata.metadata(DISTRIBUTION).get_all("Provides-Extra") or []
    except importlib.metadata.PackageNotFoundError:
        return []


def missing_packages_message(packages: list[str], extra: str, what: str = "this command") -> str:
    """The one line for `what` needing `packages` that are not installed, naming the extra that brings them."""
    verb = "is" if len(packages) == 1 else "are"
    install = f"pip install '{DISTRIBUTION}[{extra}]'"
    return f"{', '.join(packages)} {verb} not installed; {what} needs the {extra} extra: {install}"


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """The one line for a command that imported a package of an extra that is not installed (`abaw train` without
    `datasets`): which package, and the extra that brings it. None when the missing module is no extra's package."""
    module = canonicalize_name((error.name or "").split(".")[0])
    for dependency in declared_dependencies():
        if dependency.extra is not None and dependency.name == module:
            return missing_packages_message([dependency.requirement.name], dependency.extra)
    return None


def gpu_summary() -> str:
    """The GPUs torch sees, with its CUDA (or ROCm) build; or why there are none."""
    import torch

    if torch.version.cuda:
        build = f"CUDA {torch.version.cuda}"
    elif torch.version.hip:
        build = f"ROCm {torch.version.hip}"
    else:
        build = None
    if not torch.cuda.is_available():
        return f"none (torch built {'for ' + build if build else 'for the CPU only'})"
    names = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    return f"{len(names)} x {', '.join(sorted(set(names)))} ({build}, bf16 {torch.cuda.is_bf16_supported()})"


def report() -> dict:
    """What a bug report needs, as a dict (`abaw env --json` prints it as is)."""
    dependencies = declared_dependencies()
    order = {canonicalize_name(name): index for index, name in enumerate(REPORTED_FIRST)}
    packages, outside = {}, []
    for dependency in sorted(dependencies, key=lambda d: (order.get(d.name, len(order)), d.extra or "", d.name)):
        if dependency.extra == "dev" or not dependency.applies or dependency.name in packages:
            continue
        packages[dependency.name] = dependency.installed or (
            f"not installed (extra {dependency.extra})" if dependency.extra else "not installed"
        )
        if dependency.in_range is False:
            outside.append(f"{dependency.name} {dependency.installed}: tested {dependency.requirement.specifier}")
    flags = cpu_flags()
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:  # an unusable torch is itself worth reporting, not a reason for the report to fail
        capability = "unknown"
    return {
        "modeling-abaw": installed_version(DISTRIBUTION) or f"{_source_version()} (not installed: a source folder)",
        "python": f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})",
        "platform": platform.platform(),
        "cpu": f"{cpu_model()}, {usable_cores()} usable cores",
        "cpu_flags": {label: flag in flags for flag, label in REPORTED_CPU_FLAGS.items()},
        "torch_cpu_capability": capability,
        "gpu": gpu_summary(),
        "packages": packages,
        "outside_tested_range": outside,
    }


def format_report(info: dict) -> str:
    """The report as the Markdown list `transformers env` prints, with the versions outside the tested ranges."""
    flags = ", ".join(f"{label} {'yes' if present else 'no'}" for label, present in info["cpu_flags"].items())
    lines = [
        "Copy and paste the text below into your bug report.",
        "",
        f"- modeling-abaw version: {info['modeling-abaw']}",
        f"- Python: {info['python']}",
        f"- Platform: {info['platform']}",
        f"- CPU: {info['cpu']}; {flags}; torch kernels: {info['torch_cpu_capability']}",
        f"- GPU: {info['gpu']}",
        *(f"- {name}: {version}" for name, version in info["packages"].items()),
    ]
    if info["outside_tested_range"]:
        lines += ["", "Installed outside the tested ranges (pyproject.toml):"]
        lines += [f"- {line}" for line in info["outside_tested_range"]]
    elif info["packages"]:
        lines += ["", "Every installed dependency is within its tested range."]
    return "\n".join(lines)


def _source_version() -> str:
    from . import __version__

    return __version__
