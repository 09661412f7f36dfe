"""Real ``distillguard`` processes for tests (the helpers live in ``distillguard.processes``)."""

from __future__ import annotations

from distillguard.processes import CLI, Server, free_port

__all__ = ["CLI", "Server", "free_port"]
