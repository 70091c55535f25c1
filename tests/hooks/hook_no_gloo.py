"""A torch build without the gloo collective library (as some source builds are): ``torch.distributed``
says gloo is not available."""

import sys

from _frameworks import after_import


def _patch(name: str) -> None:
    sys.modules[name].is_gloo_available = lambda: False


after_import(_patch, names=("torch.distributed",))
