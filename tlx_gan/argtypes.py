"""argparse value types shared by every verb: a bad value becomes one line naming it and what would do."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence

# numpy's SeedSequence takes any non-negative integer; 63 bits keep seeds printable and JSON-safe.
MAX_SEED = 2**63 - 1


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask, e.g. under taskset or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive(text: str) -> int:
    value = _integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer")
    return value


def non_negative(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def up_to(limit: int, why: str) -> Callable[[str], int]:
    """A positive integer no larger than ``limit`` (``why`` says where the limit comes from)."""

    def check(text: str) -> int:
        value = positive(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"{value} is more than {limit:,} ({why}): use 1 to {limit:,}")
        return value

    return check


def below(limit: int, what: str) -> Callable[[str], int]:
    """An integer from 0 to ``limit`` - 1 (``what`` names the range: "a digit")."""

    def check(text: str) -> int:
        value = _integer(text)
        if not 0 <= value < limit:
            raise argparse.ArgumentTypeError(f"{value} is not {what}: use 0 to {limit - 1}")
        return value

    return check


def port(text: str) -> int:
    value = _integer(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port: use 1 to 65535")
    return value


def seed(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is not a valid seed: use an integer from 0 to 2**63 - 1")
    return value


def threads(text: str) -> int:
    """A thread count, capped at the CPUs this process may use: more only oversubscribes (and a huge
    count makes some frameworks crash outright)."""
    return up_to(cpu_count(), "the CPUs this machine gives the process")(text)


def choice(names: Sequence[str]) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(f"{text!r} is not valid: choose one of {', '.join(names)}")
        return text

    return check
