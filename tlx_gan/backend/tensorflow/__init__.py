"""The tensorflow backend."""

__all__ = ["compat", "distributed", "runtime"]  # the same modules in every backend
