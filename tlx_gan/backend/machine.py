"""Facts about the machine that need no framework: the CPU's model name, whether any GPU is reachable."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Device nodes through which a process can reach an accelerator at all (NVIDIA, WSL, ROCm).
_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/dev/kfd")


def machine_has_gpu() -> bool:
    """Whether this machine exposes any GPU device node: a check that needs no framework."""
    return any(os.path.exists(node) for node in _GPU_NODES)
