"""Leave a mark (the file TLX_GAN_TEST_MARKER) when any framework is imported: tests assert that checks
which need no framework fail before one is loaded."""

import os
from pathlib import Path

from _frameworks import after_import


def _mark(name: str) -> None:
    with Path(os.environ["TLX_GAN_TEST_MARKER"]).open("a") as fh:
        fh.write(f"{name}\n")


after_import(_mark)
