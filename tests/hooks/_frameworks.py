"""Run a callback right after a module (by default a framework: torch, paddle, tensorflow) is first imported."""

import importlib.abc
import sys

FRAMEWORKS = ("torch", "paddle", "tensorflow")


class _After(importlib.abc.MetaPathFinder):
    def __init__(self, callback, names):
        self.callback, self.names = callback, tuple(names)

    def find_spec(self, name, path, target=None):
        if name not in self.names:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, _After) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        real, callback = spec.loader, self.callback

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return real.create_module(spec)

            def exec_module(self, module):
                real.exec_module(module)
                callback(module.__name__)

        spec.loader = Loader()
        return spec


def after_import(callback, names=FRAMEWORKS) -> None:
    sys.meta_path.insert(0, _After(callback, names))
