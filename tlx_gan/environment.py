"""What a run ran on: versions, device, threads, machine. Goes into run.json and every report."""

from __future__ import annotations

import os
import platform
import sys

import numpy as np

from tlx_gan import __version__, backend


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict:
    """The current process's backend and machine (imports tensorlayerx)."""
    import tensorlayerx as tlx

    from tlx_gan import compat

    runtime = backend.module("runtime")
    name = tlx.BACKEND
    return {
        "backend": name,
        "framework": backend.framework_distribution(name),
        "framework_version": backend.framework_version(name),
        "versions": runtime.versions(),
        "tensorlayerx": tlx.__version__,
        "tlx_gan": __version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": runtime.threads(),
        "devices": runtime.devices(),
        "shims_applied": [s["name"] for s in compat.report(name) if s["status"] == "applied"],
    }
