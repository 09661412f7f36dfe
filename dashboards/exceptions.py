"""Errors of the control plane and the review console.

DistillguardError
└── DashboardsError              anything the console refuses, with a message for a person
    ├── UserError                a bad username, role or password; an unknown or duplicate user
    ├── NotFound                 no such ring, account or cluster in the latest run (HTTP 404)
    ├── InvalidDecision          a decision without a reason, an unknown action (HTTP 422)
    ├── ClaimConflict            the item is claimed by someone else (HTTP 409)
    └── PublishFailed            a decision is recorded, but not every gateway got it (HTTP 502)
"""

from __future__ import annotations

from typing import Any

from distillguard.errors import DistillguardError


class DashboardsError(DistillguardError):
    """A request or command the console refuses."""

    status_code: int = 400

    def details(self) -> dict[str, Any]:
        """Fields the API adds to ``{"error": message}`` for this refusal."""
        return {}


class UserError(DashboardsError):
    """A bad username, role or password, or an unknown or duplicate user."""

    status_code = 422


class NotFound(DashboardsError):
    """No such ring, account or cluster."""

    status_code = 404


class InvalidDecision(DashboardsError):
    """A decision that cannot be taken as asked."""

    status_code = 422


class ClaimConflict(DashboardsError):
    """The queue item is claimed by another reviewer."""

    status_code = 409


class PublishFailed(DashboardsError):
    """Decisions were recorded (with a ``publish-failed`` audit entry) but not all published.

    ``decision_ids`` can be retried with ``POST /api/decisions/{id}/republish``.
    """

    status_code = 502

    def __init__(self, message: str, decision_ids: list[int]) -> None:
        super().__init__(message)
        self.decision_ids = decision_ids

    def details(self) -> dict[str, Any]:
        return {
            "decision_ids": self.decision_ids,
            "republish": [f"/api/decisions/{d}/republish" for d in self.decision_ids],
        }
