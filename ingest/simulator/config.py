"""Every knob of the simulator, with its default, in one typed config.

A YAML file mirrors the nesting of :class:`SimulationConfig`; unknown keys are refused so that a
typo does not silently fall back to a default::

    seed: 7
    days: 21
    rings: {rings: 5, accounts: 600, cover_fraction: 0.3}
    people: {accounts: 4000}
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ingest.simulator.exceptions import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PeopleConfig(_Section):
    """Individual benign users: diurnal in their own time zone, heavy-tailed volume."""

    accounts: int = Field(default=2000, ge=0, description="number of individual accounts")
    sessions_per_day_median: float = Field(
        default=0.35, gt=0, description="median sessions/day/account"
    )
    sessions_per_day_sigma: float = Field(
        default=1.2, ge=0, description="lognormal sigma of that rate"
    )
    calls_per_session_mean: float = Field(
        default=2.5, ge=1, description="mean calls in one session"
    )
    gap_median_s: float = Field(default=70.0, gt=0, description="median seconds between calls")
    plans: dict[str, float] = Field(
        default_factory=lambda: {"free": 0.55, "pay_as_you_go": 0.32, "pro": 0.13},
        description="plan -> share of people (rings copy what people have)",
    )
    weekend_factor: float = Field(
        default=0.7, ge=0, le=1, description="weekend activity relative to week"
    )
    signup_in_window_fraction: float = Field(
        default=0.05, ge=0, le=1, description="new during the window"
    )
    shared_card_fraction: float = Field(
        default=0.03, ge=0, le=1, description="share a card in pairs"
    )
    reasoning_question_rate: float = Field(
        default=0.06, ge=0, le=1, description="calls that ask a math/code problem step by step"
    )
    mobile_session_rate: float = Field(
        default=0.25, ge=0, le=1, description="sessions off the home IP"
    )
    system_prompt_rate: float = Field(
        default=0.15, ge=0, le=1, description="people who set a system prompt"
    )
    account_age_days_mean: float = Field(
        default=400.0, gt=0, description="mean account age at the start of the window"
    )

    @model_validator(mode="after")
    def _plans(self) -> PeopleConfig:
        if not self.plans or any(w <= 0 for w in self.plans.values()):
            raise ValueError("plans needs at least one plan, each with a share > 0")
        return self


class OrgConfig(_Section):
    """Organisations: members share a company card, an office /24 and an org_id."""

    orgs: int = Field(default=30, ge=0, description="number of organisations")
    members_min: int = Field(default=2, ge=1, description="smallest organisation")
    members_max: int = Field(default=60, ge=1, description="largest organisation")
    members_pareto_shape: float = Field(
        default=1.3, gt=0, description="Pareto shape of member counts"
    )
    sessions_per_day_median: float = Field(
        default=0.8, gt=0, description="median sessions/workday/member"
    )
    calls_per_session_mean: float = Field(
        default=3.0, ge=1, description="mean calls in one session"
    )
    gap_median_s: float = Field(default=60.0, gt=0, description="median seconds between calls")
    office_fraction: float = Field(
        default=0.8, ge=0, le=1, description="sessions from the office /24"
    )
    company_card_fraction: float = Field(
        default=0.9, ge=0, le=1, description="members on the company card"
    )

    @model_validator(mode="after")
    def _range(self) -> OrgConfig:
        if self.members_max < self.members_min:
            raise ValueError(f"members_max ({self.members_max}) < members_min ({self.members_min})")
        return self


class CohortConfig(_Section):
    """Student cohorts behind one university address doing the same homework (hard negative)."""

    cohorts: int = Field(default=5, ge=0, description="number of cohorts")
    students_min: int = Field(default=20, ge=1, description="smallest cohort")
    students_max: int = Field(default=60, ge=1, description="largest cohort")
    assignments: int = Field(default=3, ge=1, description="homework sets per cohort in the window")
    problems_per_assignment: int = Field(
        default=10, ge=1, description="problems in one homework set"
    )
    gap_median_s: float = Field(
        default=240.0, gt=0, description="median seconds between two problems"
    )
    participation: float = Field(
        default=0.8, ge=0, le=1, description="chance a student does a problem"
    )
    step_by_step_rate: float = Field(default=0.6, ge=0, le=1, description="asks for the working")
    campus_fraction: float = Field(
        default=0.7, ge=0, le=1, description="sessions from the campus address"
    )

    @model_validator(mode="after")
    def _range(self) -> CohortConfig:
        if self.students_max < self.students_min:
            raise ValueError(
                f"students_max ({self.students_max}) < students_min ({self.students_min})"
            )
        return self


class BenchmarkConfig(_Section):
    """Benchmark runners: one account sends a whole test set with a CoT template in a burst."""

    runners: int = Field(default=6, ge=0, description="number of benchmark-runner accounts")
    max_problems: int = Field(
        default=500, ge=1, description="cap on the test-set size sent in one run"
    )
    runs_max: int = Field(
        default=2, ge=1, description="most runs of the set per runner in the window"
    )
    gap_median_s: float = Field(
        default=1.5, gt=0, description="median seconds between calls of a run"
    )


class IntegratorConfig(_Section):
    """App integrators: one old account, round the clock, one fixed prompt template."""

    integrators: int = Field(default=5, ge=0, description="number of integrator accounts")
    calls_per_day_median: float = Field(default=140.0, gt=0, description="median calls per day")
    min_age_days: int = Field(
        default=365, ge=0, description="youngest integrator account at the start"
    )


class RingConfig(_Section):
    """Extraction rings."""

    rings: int = Field(default=3, ge=0, description="number of rings")
    accounts: int = Field(
        default=200, ge=0, description="ring accounts in total, split across rings"
    )
    waves_per_ring: int = Field(default=3, ge=1, description="sign-up waves per ring")
    wave_spread_hours: float = Field(
        default=6.0, gt=0, description="spread of sign-ups inside a wave"
    )
    calls_per_account_day_median: float = Field(
        default=20.0, gt=0, description="median calls/account/day (the real operation: ~26)"
    )
    calls_per_account_day_sigma: float = Field(default=0.4, ge=0, description="lognormal sigma")
    calls_per_session_mean: float = Field(
        default=6.0, ge=1, description="mean calls in one session"
    )
    gap_median_s: float = Field(default=45.0, gt=0, description="median seconds between calls")
    shared_card_fraction: float = Field(
        default=0.4, ge=0, le=1, description="accounts whose card is shared in a small group"
    )
    card_group_max: int = Field(default=4, ge=2, description="largest group sharing one card")
    proxy_ips_per_account: float = Field(
        default=1.5, gt=0, description="residential proxy pool size"
    )
    geo_match_rate: float = Field(
        default=0.7, ge=0, le=1, description="proxy exits in the account's claimed country"
    )
    datacenter_subnets: int = Field(default=3, ge=0, description="datacenter /24s in a ring's pool")
    datacenter_rate: float = Field(
        default=0.3, ge=0, le=1, description="sessions through a datacenter IP"
    )
    paraphrases_per_ring: int = Field(
        default=4, ge=1, description="template paraphrases a ring uses"
    )
    bank_size: int = Field(
        default=20_000, ge=1, description="most questions in a ring's bank (capped by the pool)"
    )
    cover_fraction: float = Field(default=0.15, ge=0, le=1, description="benign cover calls")
    timing: Literal["human", "uniform"] = Field(
        default="human", description="human: diurnal sessions in the account's claimed time zone"
    )
    sync_fraction: float = Field(
        default=0.3, ge=0, le=1, description="sessions started on ring-wide scheduler slots"
    )
    lifetime_days_median: float = Field(
        default=7.0, gt=0, description="median days an account is used"
    )

    @model_validator(mode="after")
    def _sizes(self) -> RingConfig:
        if self.rings == 0 and self.accounts > 0:
            raise ValueError(f"accounts is {self.accounts} but rings is 0")
        if self.accounts < 2 * self.rings:
            raise ValueError(
                f"accounts ({self.accounts}) must be at least 2 per ring ({self.rings} rings)"
            )
        return self


class TrafficConfig(_Section):
    """Per-call properties shared by every population."""

    models: dict[str, float] = Field(
        default_factory=lambda: {"atlas-large": 0.35, "atlas-mini": 0.5, "atlas-reasoner": 0.15},
        description="model name -> share",
    )
    anthropic_style_rate: float = Field(
        default=0.4, ge=0, le=1, description="generic clients calling /v1/messages"
    )
    error_rates: dict[int, float] = Field(
        default_factory=lambda: {429: 0.012, 400: 0.006, 401: 0.001, 500: 0.004, 503: 0.004},
        description="HTTP status -> share of calls; the rest are 200",
    )
    first_byte_ms_median: float = Field(
        default=380.0, gt=0, description="median time to first byte"
    )
    ms_per_token: dict[str, float] = Field(
        default_factory=lambda: {"atlas-large": 22.0, "atlas-mini": 9.0, "atlas-reasoner": 30.0},
        description="generation time per completion token, per model",
    )

    @model_validator(mode="after")
    def _shares(self) -> TrafficConfig:
        if not self.models or any(w <= 0 for w in self.models.values()):
            raise ValueError("models needs at least one model, each with a share > 0")
        total = sum(self.error_rates.values())
        if any(w < 0 for w in self.error_rates.values()) or total >= 1:
            raise ValueError(f"error_rates must be >= 0 and sum below 1 (sum is {total})")
        if any(code < 400 or code > 599 for code in self.error_rates):
            raise ValueError(f"error_rates keys must be 4xx/5xx codes: {sorted(self.error_rates)}")
        return self


class SimulationConfig(_Section):
    """The whole simulation. ``scaled(f)`` multiplies every population size by ``f``."""

    seed: int = Field(default=0, ge=0, description="random seed: one seed, one output")
    start: dt.datetime = Field(
        default=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
        description="first instant of the window (UTC)",
    )
    days: int = Field(default=14, ge=1, le=366, description="length of the window in days")
    people: PeopleConfig = Field(default_factory=PeopleConfig)
    orgs: OrgConfig = Field(default_factory=OrgConfig)
    cohorts: CohortConfig = Field(default_factory=CohortConfig)
    benchmarks: BenchmarkConfig = Field(default_factory=BenchmarkConfig)
    integrators: IntegratorConfig = Field(default_factory=IntegratorConfig)
    rings: RingConfig = Field(default_factory=RingConfig)
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)

    @model_validator(mode="after")
    def _utc(self) -> SimulationConfig:
        if self.start.tzinfo is None:
            object.__setattr__(self, "start", self.start.replace(tzinfo=dt.UTC))
        return self

    def scaled(self, factor: float) -> SimulationConfig:
        """A copy with every population size multiplied by ``factor`` (rings keep >= 2 accounts)."""
        if factor <= 0:
            raise ConfigError(f"--scale must be > 0, got {factor}")

        def n(value: int) -> int:
            return round(value * factor)

        rings = self.rings.rings if self.rings.rings == 0 else max(1, n(self.rings.rings))
        ring_accounts = max(2 * rings, n(self.rings.accounts)) if rings else 0
        return self.model_copy(
            update={
                "people": self.people.model_copy(update={"accounts": n(self.people.accounts)}),
                "orgs": self.orgs.model_copy(update={"orgs": n(self.orgs.orgs)}),
                "cohorts": self.cohorts.model_copy(update={"cohorts": n(self.cohorts.cohorts)}),
                "benchmarks": self.benchmarks.model_copy(
                    update={"runners": n(self.benchmarks.runners)}
                ),
                "integrators": self.integrators.model_copy(
                    update={"integrators": n(self.integrators.integrators)}
                ),
                "rings": self.rings.model_copy(update={"rings": rings, "accounts": ring_accounts}),
            }
        )

    def to_yaml(self) -> str:
        """The config as YAML that :func:`load_config` reads back to an equal config."""
        return str(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))

    def with_overrides(self, overrides: dict[str, Any]) -> SimulationConfig:
        """A validated copy with dotted-path overrides, e.g. ``{"rings.accounts": 100}``."""
        data = self.model_dump()
        for dotted, value in overrides.items():
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
        return parse_config(data, source="options")


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_config(data: object, source: str = "config") -> SimulationConfig:
    """Validate a mapping into a :class:`SimulationConfig`, naming every bad key or value."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return SimulationConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def load_config(path: Path) -> SimulationConfig:
    """Read a YAML config file; an empty file gives the defaults."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_config({} if data is None else data, source=str(path))
