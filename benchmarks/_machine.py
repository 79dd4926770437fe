"""What the benchmark scripts report about the machine and the installed versions."""

from __future__ import annotations

import importlib.metadata
import os


def version(dist: str) -> str:
    """Return the installed version of *dist*, or ``not installed``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpus() -> str:
    """Return the CPU count, and how many this process may use where the platform says."""
    count = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return f"{count}"
    return f"{count} ({usable} usable)"
