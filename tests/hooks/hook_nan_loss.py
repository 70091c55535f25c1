"""A training run whose loss turns NaN at step TLX_GAN_TEST_NAN_AT (0-based), as a diverging GAN's does:
``Gan.train_step`` reports a NaN D loss from that call on."""

import os

from _frameworks import after_import

_AT = int(os.environ["TLX_GAN_TEST_NAN_AT"])


def _patch(name: str) -> None:
    import sys

    gan = sys.modules[name].Gan
    real_step = gan.train_step
    calls = {"n": 0}

    def train_step(self, *args):
        d_loss, g_loss = real_step(self, *args)
        calls["n"] += 1
        return (float("nan") if calls["n"] > _AT else d_loss), g_loss

    gan.train_step = train_step


after_import(_patch, names=("tlx_gan.gan",))
