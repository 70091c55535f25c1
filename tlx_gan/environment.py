"""What a run ran on: versions, device, threads, machine. Goes into run.json and every report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

import numpy as np

from tlx_gan import backend
from tlx_gan.backend import cpu_model, shims


def _tlx_gan_version() -> str:
    try:
        return importlib.metadata.version("tlx-gan")  # pyproject.toml's, the one place it is written
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def describe() -> dict:
    """The current process's backend and machine (imports tensorlayerx)."""
    import tensorlayerx as tlx

    runtime = backend.module("runtime")
    name = tlx.BACKEND
    return {
        "backend": name,
        "framework": backend.framework_distribution(name),
        "framework_version": backend.framework_version(name),
        "versions": runtime.versions(),
        "tensorlayerx": tlx.__version__,
        "tlx_gan": _tlx_gan_version(),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": runtime.threads(),
        "devices": runtime.devices(),
        "shims_applied": [s["name"] for s in shims.report(name) if s["status"] == "applied"],
    }
