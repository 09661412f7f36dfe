"""The licence gate: may this distillation job run, under which obligations, and why.

``check(spec)`` is pure with respect to models: it reads model cards and licence files, never
weights. Every licence that touches the job enters the decision: the teacher's (and its lineage),
the student base model's, and each data entry's. Each question the decision needs is answered by
a registry clause, quoted in the reason; a question the text leaves open is decided by the org
policy (default: refuse). Any refusal makes the decision ``deny``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from policies.exceptions import PolicyFileError
from policies.licenses import LicenceEntry, Registry, Topic, shipped_registry
from policies.loader import LoadedPolicy, load_policy, parse_yaml, shipped_policy_path
from policies.org import OrgPolicy
from policies.resolve import Resolution, resolve_data, resolve_model

if TYPE_CHECKING:
    from distill.spec import JobSpec

Outcome = Literal["permits", "refuses", "obliges", "notes"]
Verdict = Literal["allow", "allow_with_obligations", "deny"]


class Reason(BaseModel):
    """One step of the decision, citing the licence and clause it rests on."""

    role: str
    licence: str
    clause: str
    quote: str
    outcome: Outcome
    message: str


class DecisionObligation(BaseModel):
    """A concrete obligation the student or its distributor owes."""

    kind: str
    text: str
    role: str
    licence: str
    clause: str
    applies_when: str
    status: Literal["met", "to_do"] = "to_do"


class Decision(BaseModel):
    """The gate's answer for one job."""

    decision: Verdict
    use: str
    use_treated_as: str
    method: str
    teacher: str
    student: str
    student_name: str
    licences: dict[str, list[str]]
    evidence: dict[str, list[str]]
    reasons: list[Reason]
    obligations: list[DecisionObligation]
    policy_hash: str
    policy_files: dict[str, str]


_DEFAULT_TEXT = {
    "licence_copy": "a copy of the licence",
    "mark_modifications": "modified files carry prominent notices that they were changed",
}


@dataclass
class _Context:
    """The state one decision accumulates: reasons, obligations and the files consulted."""

    registry: Registry
    org: OrgPolicy
    use: str
    student_licences: list[str]
    student_name: str
    reasons: list[Reason] = field(default_factory=list)
    obligations: list[DecisionObligation] = field(default_factory=list)
    consulted: dict[str, str] = field(default_factory=dict)

    def note(
        self, role: str, licence: str, clause: str, quote: str, outcome: Outcome, msg: str
    ) -> None:
        self.reasons.append(
            Reason(
                role=role, licence=licence, clause=clause, quote=quote, outcome=outcome, message=msg
            )
        )

    def cite(
        self, role: str, entry: LicenceEntry, clauses: list[str], outcome: Outcome, msg: str
    ) -> None:
        quote = " | ".join(entry.clause(c).text for c in clauses)
        self.note(role, entry.id, ", ".join(clauses), quote, outcome, msg)

    def silent(self, role: str, entry: LicenceEntry, topic: Topic, question: str) -> None:
        outcome: Outcome = "refuses" if self.org.silence == "refuse" else "notes"
        msg = f"the licence does not answer {question}; org policy silence: {self.org.silence}"
        self.note(role, entry.id, f"silent_on: {topic}", entry.silence(topic).note, outcome, msg)

    def owe(
        self, role: str, entry: LicenceEntry, kind: str, clauses: list[str], text: str, when: str
    ) -> None:
        met = kind == "name_prefix" and self.student_name.startswith(text)
        self.obligations.append(
            DecisionObligation(
                kind=kind,
                text=text,
                role=role,
                licence=entry.id,
                clause=", ".join(clauses),
                applies_when=when,
                status="met" if met else "to_do",
            )
        )

    def entries(self, ids: list[str]) -> list[LicenceEntry]:
        """The registry entries for ``ids``, remembering each file's hash for the decision."""
        out = []
        for licence_id in ids:
            loaded = self.registry.entries[licence_id]
            self.consulted[str(loaded.path)] = loaded.sha256
            out.append(loaded.model)
        return out

    def unresolved(self, role: str, found: Resolution) -> None:
        for problem in found.problems:
            self.note(role, "unknown", "resolution", "", "refuses", problem)


def _training(ctx: _Context, role: str, entry: LicenceEntry) -> None:
    """May this material (teacher or data) train the student?"""
    rule = entry.train_other_models
    if rule.value == "silent":
        ctx.silent(role, entry, "train_other_models", "whether it may train another model")
    elif rule.value == "yes":
        ctx.cite(role, entry, rule.clauses, "permits", "may be used to train the student")
    elif rule.value == "no":
        ctx.cite(role, entry, rule.clauses, "refuses", "may not be used to train another model")
    elif rule.value == "same_family":
        family = sorted(set(rule.same_family) & set(ctx.student_licences))
        if family:
            ctx.cite(role, entry, rule.clauses, "permits", f"the student base is under {family[0]}")
        else:
            base = ", ".join(ctx.student_licences) or "none (trained from scratch)"
            msg = (
                f"may only improve models under {', '.join(rule.same_family)}; "
                f"the student base licence is {base}"
            )
            ctx.cite(role, entry, rule.clauses, "refuses", msg)
    elif rule.value == "not_competing":
        attested = entry.id in ctx.org.attest_not_competing
        _with_org_consent(
            ctx,
            role,
            entry,
            "attestation",
            f"the student must not compete with the provider's services ({entry.name})"
            if attested
            else None,
            refusal="outputs may not train models that compete with the provider; the gate "
            "cannot establish that the student does not compete (list the licence in the org "
            "policy's attest_not_competing to attest it)",
        )
    else:  # with_authorization
        granted = [a.reference for a in ctx.org.authorizations if a.licence == entry.id]
        _with_org_consent(
            ctx,
            role,
            entry,
            "authorization",
            f"keep the authorisation on record: {granted[0]}" if granted else None,
            refusal="training on these outputs needs the provider's prior authorisation; "
            "record it under authorizations in the org policy once granted",
        )


def _with_org_consent(
    ctx: _Context, role: str, entry: LicenceEntry, kind: str, consent: str | None, refusal: str
) -> None:
    """Training the terms allow only on a condition the organisation must vouch for."""
    clauses = entry.train_other_models.clauses
    if consent is None:
        ctx.cite(role, entry, clauses, "refuses", refusal)
        return
    ctx.cite(role, entry, clauses, "permits", f"the org policy records the {kind}")
    ctx.owe(role, entry, kind, clauses, consent, "as long as the student is used")


def _commercial(ctx: _Context, role: str, entry: LicenceEntry) -> None:
    """Does the licence allow the job's use (commercial, or research-only licences)?"""
    rule = entry.commercial
    cap, users = rule.monthly_active_user_cap, ctx.org.monthly_active_users
    if ctx.use != "commercial":
        if rule.value == "no":
            ctx.cite(role, entry, rule.clauses, "permits", f"{ctx.use} use is not commercial use")
    elif rule.value == "silent":
        ctx.silent(role, entry, "commercial", "whether commercial use is allowed")
    elif rule.value == "no":
        ctx.cite(role, entry, rule.clauses, "refuses", "commercial use is not permitted")
    elif cap is None:
        ctx.cite(role, entry, rule.clauses, "permits", "commercial use is permitted")
    elif users is None:
        msg = f"commercial use above {cap:,} monthly active users needs a separate licence"
        ctx.cite(role, entry, rule.clauses, "obliges", msg)
        text = f"confirm at most {cap:,} monthly active users, or obtain a licence"
        ctx.owe(role, entry, "user_cap", rule.clauses, text, "commercial use")
    elif users > cap:
        msg = f"the organisation's {users:,} monthly active users exceed {cap:,}"
        ctx.cite(role, entry, rule.clauses, "refuses", msg)
    else:
        msg = f"{users:,} monthly active users is within {cap:,}"
        ctx.cite(role, entry, rule.clauses, "permits", msg)


def _carries_material_obligations(ctx: _Context, role: str, entry: LicenceEntry) -> bool:
    """Is a student trained with this teacher or data bound like a copy of it?"""
    rule = entry.student_is_derivative
    if rule.value == "yes":
        msg = "the student is a derivative under this licence and carries its obligations"
        ctx.cite(role, entry, rule.clauses, "obliges", msg)
        return True
    if rule.value == "no":
        msg = "the student is not a copy or derivative under this licence's conditions"
        ctx.cite(role, entry, rule.clauses, "notes", msg)
        return False
    assume = ctx.org.silent_derivative == "assume_derivative"
    msg = (
        "the licence does not say whether the student is a derivative; org policy "
        f"silent_derivative: {ctx.org.silent_derivative}"
    )
    note = entry.silence("student_is_derivative").note
    ctx.note(
        role,
        entry.id,
        "silent_on: student_is_derivative",
        note,
        "obliges" if assume else "notes",
        msg,
    )
    return assume


def _obligations(ctx: _Context, role: str, entry: LicenceEntry, material: bool) -> None:
    """Owe the licence's obligations: all of them for material, else those that follow training."""
    for ob in entry.obligations:
        if material or ob.scope == "trained_model":
            text = ob.text or _DEFAULT_TEXT.get(ob.kind, ob.kind.replace("_", " "))
            ctx.owe(role, entry, ob.kind, ob.clauses, text, ob.applies_when)


def _trained_with(ctx: _Context, role: str, found: Resolution) -> None:
    """Evaluate a teacher or a data entry: training, use, and the obligations that follow."""
    ctx.unresolved(role, found)
    for entry in ctx.entries(found.licences):
        _training(ctx, role, entry)
        _commercial(ctx, role, entry)
        _obligations(ctx, role, entry, _carries_material_obligations(ctx, role, entry))


def _student_base(ctx: _Context, found: Resolution) -> None:
    """The student is built on its base model: the base's use terms and all obligations apply."""
    role = "student base"
    ctx.unresolved(role, found)
    for entry in ctx.entries(found.licences):
        if entry.kind == "api_terms":
            msg = "API terms of service cannot be a student base model's licence"
            ctx.note(role, entry.id, "kind", entry.name, "refuses", msg)
        _commercial(ctx, role, entry)
        _obligations(ctx, role, entry, material=True)


def _policy_hash(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{Path(path).name}:{files[path]}\n".encode())
    return digest.hexdigest()


def load_org_policy(path: Path | None = None) -> LoadedPolicy[OrgPolicy]:
    """The org policy at ``path``, or the shipped ``policies/org.yaml``."""
    return load_policy(path or shipped_policy_path("org.yaml"), OrgPolicy)


def _check_org_references(org: LoadedPolicy[OrgPolicy], registry: Registry) -> None:
    """An org policy naming a licence the registry lacks would silently do nothing: refuse it."""
    unknown = org.model.unknown_licences(set(registry.entries))
    if not unknown:
        return
    _, lines = parse_yaml(org.path.read_text(encoding="utf-8"), str(org.path))
    raise PolicyFileError(
        "\n".join(
            f"{org.path}:{lines.get(loc, 1)}: field '{'.'.join(map(str, loc))}': {lid} is not a "
            "licence id in the registry (distillguard policies licenses lists them)"
            for loc, lid in unknown
        )
    )


def check(
    spec: JobSpec,
    org: LoadedPolicy[OrgPolicy] | None = None,
    registry: Registry | None = None,
) -> Decision:
    """Decide whether ``spec`` may run: ``allow``, ``allow_with_obligations`` or ``deny``."""
    org = org or load_org_policy()
    registry = registry or shipped_registry()
    _check_org_references(org, registry)
    policy = org.model
    use = policy.internal_use_counts_as if spec.use == "internal" else spec.use
    student = resolve_model(spec.student, spec.student_license, registry, policy, "student")
    teacher = resolve_model(spec.teacher, spec.teacher_license, registry, policy, "teacher")
    data = [resolve_data(item.label, item.license, registry) for item in spec.data]
    ctx = _Context(registry, policy, use, student.licences, spec.student_name)
    if spec.use not in policy.allowed_uses:
        msg = f"the org policy does not allow {spec.use} use"
        ctx.note("job", "org-policy", "allowed_uses", "", "refuses", msg)
    _student_base(ctx, student)
    _trained_with(ctx, "teacher", teacher)
    roles = {"student base": student, "teacher": teacher}
    for index, found in enumerate(data):
        role = f"data[{index}] {found.subject}"
        _trained_with(ctx, role, found)
        roles[role] = found

    files = {str(org.path): org.sha256, **ctx.consulted}
    refused = any(r.outcome == "refuses" for r in ctx.reasons)
    verdict: Verdict = (
        "deny" if refused else "allow_with_obligations" if ctx.obligations else "allow"
    )
    return Decision(
        decision=verdict,
        use=spec.use,
        use_treated_as=use,
        method=spec.method,
        teacher=spec.teacher,
        student=spec.student,
        student_name=spec.student_name,
        licences={role: found.licences for role, found in roles.items()},
        evidence={
            role: [f"{e.licence} <- {e.source}" for e in found.evidence]
            for role, found in roles.items()
        },
        reasons=ctx.reasons,
        obligations=_dedupe(ctx.obligations),
        policy_hash=_policy_hash(files),
        policy_files=files,
    )


def _dedupe(items: list[DecisionObligation]) -> list[DecisionObligation]:
    """Drop repeated obligations: one per kind, text and licence. Attribution is owed to each
    source, so a model's and the data's are kept apart (the data entries under one licence share
    one, met by crediting each entry; see :mod:`distill.obligations`)."""
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for item in items:
        owed_to = ""
        if item.kind == "attribution":
            owed_to = "data" if item.role.startswith("data[") else item.role
        key = (item.kind, item.text, item.licence, owed_to)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
