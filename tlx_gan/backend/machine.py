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


# The CPU features that change which kernels the frameworks pick (oneDNN, MKL, Eigen), widest last.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile",
              "avx_ne_convert")


def cpu_flags() -> list[str]:
    """The :data:`SIMD_FLAGS` this CPU has (from /proc/cpuinfo; empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in SIMD_FLAGS if flag in have]
    except OSError:
        pass
    return []


def cpu_kind() -> str:
    """A short name for this kind of CPU, for one recorded benchmark file per kind: the model's words and
    its widest vector unit, e.g. ``amd-epyc-avx512``."""
    words = "".join(c if c.isalnum() else " " for c in cpu_model().lower()).split()
    name = "-".join(w for w in words if w not in ("processor", "cpu", "with", "core", "tm", "r"))[:40] or "cpu"
    flags = cpu_flags()
    widest = next((f for f in ("amx_bf16", "avx512f", "avx2", "avx") if f in flags), "")
    return f"{name}-{widest.replace('avx512f', 'avx512').replace('_bf16', '')}".strip("-")
