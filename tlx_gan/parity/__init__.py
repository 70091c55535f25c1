"""Parity: float64 NumPy references that the framework runs are checked against."""
