"""Diffusion Stage backend: the long-running process that diffuses, estimates depth and mattes frames."""

__version__ = "0.1.0"
