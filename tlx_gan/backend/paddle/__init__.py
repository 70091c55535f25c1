"""The paddle backend."""

__all__ = ["compat", "runtime"]  # the same modules in every backend
