"""``python -m tlx_gan``: the same as the ``tlx-gan`` command."""

import sys

from tlx_gan.cli import main

sys.exit(main())
