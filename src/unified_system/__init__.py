"""unified-system: a process supervisor for polyglot applications."""

__version__ = "0.1.0"
