"""Start-up hooks for the tests' child processes: ``PYTHONPATH=tests/hooks`` and
``TLX_GAN_TEST_HOOKS=name,...`` load ``tests/hooks/<name>.py`` before the program runs (see
``conftest.hook_env``). They change the child's world the way a machine or a user could (a chatty
framework, a full disk, a missing framework); tlx-gan itself has no test switches for them."""

import importlib
import os

for _name in filter(None, os.environ.get("TLX_GAN_TEST_HOOKS", "").split(",")):
    importlib.import_module(f"hook_{_name}")
