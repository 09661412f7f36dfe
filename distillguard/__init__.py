"""distillguard: the distribution's shared entry point (the one CLI and its version)."""

__version__ = "0.1.0"
