"""``python -m tlx_gan.bench``: the bench verb on its own."""

import sys

from tlx_gan.bench import main

sys.exit(main())
