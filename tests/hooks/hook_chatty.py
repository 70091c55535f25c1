"""A framework that talks at start-up the way TensorFlow does on CPUs with AVX-512: C++ writing straight to
file descriptor 2 as it loads, which no Python-level redirection catches. With
TLX_GAN_TEST_BROKEN=<framework>, that framework's import then fails (a broken build)."""

import os

from _frameworks import after_import

CHATTER = b"I0000 00:00:1.0 12345 port.cc:153] a framework's C++ start-up line on file descriptor 2\n"


def _talk(name: str) -> None:
    os.write(2, CHATTER)
    if os.environ.get("TLX_GAN_TEST_BROKEN") == name:
        raise ImportError(f"{name}: simulated broken build (libfoo.so: cannot open shared object file)")


after_import(_talk)
