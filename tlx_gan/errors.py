"""The one exception type for user mistakes (bad flag, missing file, corrupt checkpoint).

The CLI prints it as a single line ``tlx-gan: error: <message>`` and exits 2, with no traceback.
Messages name the thing at fault and say what would be right.
"""


class UserError(Exception):
    """A problem with what the user asked for or handed in, not a bug in tlx-gan."""

    exit_code = 2
