"""What machine a measurement ran on: the demo's results and the benchmarks print it beside their figures."""

import os
import platform
from pathlib import Path


def _cpuinfo_field(name: str) -> str | None:
    """The first value of a /proc/cpuinfo field (Linux), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == name:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module knows."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux names them (avx2, avx512f, avx512_bf16, amx_tile, ...); empty elsewhere."""
    return frozenset((_cpuinfo_field("flags") or "").split())


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
