"""`abaw env` and the lock: the report a bug needs, versions outside the tested ranges, and a lock that matches
pyproject.toml's ranges, the Makefile's torch and the Space's copy."""

import json
import re
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from modeling_abaw import environment
from modeling_abaw.cli import main

REPOSITORY = Path(__file__).resolve().parents[1]


def pins(path: Path) -> dict[str, str]:
    """name -> version of a pip constraints file's `name==version` lines."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            found[canonicalize_name(match[1])] = match[2]
    return found


def test_abaw_env_names_what_a_bug_report_needs(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    for line in ("- modeling-abaw version: ", "- Python: ", "- Platform: ", "- CPU: ", "- GPU: "):
        assert line in out
    assert re.search(r"AVX-512 (yes|no)", out) and re.search(r"AMX (yes|no)", out) and "AVX512-BF16" in out
    for name in ("torch", "transformers", "accelerate", "huggingface-hub", "datasets", "av", "opencv-python-headless",
                 "ai-edge-litert", "onnxruntime", "gradio"):  # fmt: skip
        assert re.search(rf"^- {name}: \S", out, re.MULTILINE), name


def test_abaw_env_json_is_the_same_report(capsys):
    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["packages"]["av"] == environment.installed_version("av")
    assert set(info["cpu_flags"]) == set(environment.REPORTED_CPU_FLAGS.values())


def test_a_version_outside_the_tested_range_is_named(monkeypatch, capsys):
    real = environment.installed_version
    monkeypatch.setattr(environment, "installed_version", lambda name: "16.0.0" if name == "av" else real(name))
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "Installed outside the tested ranges (pyproject.toml):\n- av 16.0.0: tested >=17.1" in out


def test_a_missing_extra_is_reported_with_its_extra(monkeypatch, capsys):
    real = environment.installed_version
    monkeypatch.setattr(environment, "installed_version", lambda name: None if name == "gradio" else real(name))
    assert main(["env"]) == 0
    assert "- gradio: not installed (extra space)" in capsys.readouterr().out


@pytest.fixture(scope="module")
def declared():
    dependencies = environment.declared_dependencies()
    assert dependencies, "the package is not installed: run make install"
    return dependencies


def test_the_lock_pins_every_dependency_within_its_range(declared):
    lock = pins(REPOSITORY / ".ci" / "constraints.txt")
    for dependency in declared:
        if not dependency.applies or dependency.name == "torch":  # torch: installed first, pinned by the Makefile
            continue
        assert dependency.name in lock, f"{dependency.name} is not in the lock: run make lock"
        assert dependency.requirement.specifier.contains(lock[dependency.name], prereleases=True), (
            f"the lock's {dependency.name}=={lock[dependency.name]} is outside {dependency.requirement}: run make lock"
        )


def test_the_installed_environment_is_the_lock(declared):
    lock = pins(REPOSITORY / ".ci" / "constraints.txt")
    for dependency in declared:
        if dependency.applies and dependency.name in lock:
            assert dependency.installed == lock[dependency.name], f"{dependency.name}: run make install"


def test_the_space_pins_the_locks_versions_and_the_makefiles_torch():
    lock, space = pins(REPOSITORY / ".ci" / "constraints.txt"), pins(REPOSITORY / "spaces" / "constraints.txt")
    assert {name: version for name, version in space.items() if name != "torch"}.items() <= lock.items()
    torch_pin = re.search(r"^TORCH := torch==(\S+)$", (REPOSITORY / "Makefile").read_text(), re.MULTILINE)[1]
    assert space["torch"] == torch_pin
    assert "gradio" in space and "modeling-abaw[space]" in (REPOSITORY / "spaces" / "requirements.txt").read_text()
    sdk = re.search(r"^sdk_version: (\S+)$", (REPOSITORY / "spaces" / "README.md").read_text(), re.MULTILINE)[1]
    assert sdk == space["gradio"]  # the Hub installs the README's gradio: the one the lock tested
