"""The module servers import: ``uvicorn guard.asgi:app`` (settings from ``GUARD_*`` variables)."""

from __future__ import annotations

from guard.app import create_app

app = create_app()
