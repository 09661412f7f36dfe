"""The console for an ASGI server: ``uvicorn dashboards.asgi:app`` (settings from DASHBOARDS_*)."""

from __future__ import annotations

from dashboards.app import create_app

app = create_app()
