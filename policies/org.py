"""The organisation's policy: how the licence gate treats silence, uses and attestations."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from policies.loader import PolicyModel

Use = Literal["commercial", "research", "internal"]
_ALL_USES: tuple[Use, ...] = ("commercial", "research", "internal")


class Authorization(PolicyModel):
    """Written permission from a licensor, e.g. Anthropic's prior authorisation to distil."""

    licence: str = Field(description="the registry id the authorisation is for")
    reference: str = Field(min_length=3, description="where the signed permission is kept")


class OrgPolicy(PolicyModel):
    """How the gate decides where the licence texts leave the answer to the organisation."""

    silence: Literal["refuse", "allow"] = Field(
        default="refuse",
        description="a licence silent on a question the decision needs: refuse or allow",
    )
    silent_derivative: Literal["assume_derivative", "assume_not_derivative"] = Field(
        default="assume_derivative",
        description="a teacher licence silent on whether the student is its derivative",
    )
    allowed_uses: list[Use] = Field(default_factory=lambda: list(_ALL_USES))
    internal_use_counts_as: Literal["commercial", "research"] = Field(
        default="commercial",
        description="internal use at a company is commercial unless the organisation decides",
    )
    monthly_active_users: int | None = Field(
        default=None,
        ge=0,
        description="the organisation's monthly active users; unset makes user caps an obligation",
    )
    attest_not_competing: list[str] = Field(
        default_factory=list,
        description="licence ids whose 'models that compete' clause the organisation attests it "
        "does not breach (the student does not compete with that provider)",
    )
    authorizations: list[Authorization] = Field(default_factory=list)
    trust_declaration_without_evidence: bool = Field(
        default=False,
        description="accept a job's teacher_license for a local model with no licence files",
    )
    known_models: dict[str, str] = Field(
        default_factory=dict,
        description="Hub model id -> registry licence id, for lineage the registry does not cover",
    )

    def unknown_licences(self, known: set[str]) -> list[tuple[tuple[str | int, ...], str]]:
        """Fields that name a licence id the registry does not have, as (path, id) pairs."""
        refs: list[tuple[tuple[str | int, ...], str]] = [
            (("attest_not_competing", i), lid) for i, lid in enumerate(self.attest_not_competing)
        ]
        refs += [
            (("authorizations", i, "licence"), a.licence) for i, a in enumerate(self.authorizations)
        ]
        refs += [(("known_models", model), lid) for model, lid in self.known_models.items()]
        return [(path, lid) for path, lid in refs if lid not in known]
