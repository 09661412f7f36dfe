"""Benign populations that look like rings on one signal or another (hard negatives).

Student cohorts, benchmark runners and app integrators.
"""

from __future__ import annotations

import numpy as np

from ingest.simulator import sampling as s
from ingest.simulator.block import Accounts, Block, Calls, Context, concat, const, nones
from ingest.simulator.catalog import FREE_MAIL, UNIVERSITIES
from ingest.simulator.people import cards, company_domains, plan_cards
from ingest.simulator.templates import (
    BENCH_CODE_TEMPLATES,
    BENCH_MATH_TEMPLATES,
    INTEGRATOR_TEMPLATES,
    STUDENT_PLAIN_TEMPLATES,
    STUDENT_STEP_TEMPLATES,
    fill,
)

_EMPTY = np.zeros(0, dtype=np.int64)


def _empty() -> Block:
    empty = np.zeros(0, dtype=object)
    return Block(
        Accounts(_EMPTY, empty, empty, empty, empty, empty, empty, empty, empty),
        Calls(_EMPTY, _EMPTY, empty, empty, empty, empty, empty, empty),
    )


def _one_country(ctx: Context) -> str:
    codes, weights = s.country_weights()
    return str(codes[ctx.rng.choice(len(codes), p=weights)])


def _hour_seconds(rng: np.random.Generator, n: int, profile: str) -> np.ndarray:
    cdf = np.cumsum(s.DIURNAL[profile])
    hour = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), 23)
    result: np.ndarray = hour * 3600 + rng.random(n) * 3600
    return result


def cohort(ctx: Context, number: int) -> Block:
    """A class: one university domain and campus address, shared homework, deadlines."""
    cfg, rng = ctx.config.cohorts, ctx.rng
    n = int(rng.integers(cfg.students_min, cfg.students_max + 1))
    country = _one_country(ctx)
    offset = float(s.utc_offsets(rng, np.array([country], dtype=object))[0])
    domain = f"{UNIVERSITIES[number % len(UNIVERSITIES)]}{number // len(UNIVERSITIES) or ''}.edu"
    campus = s.residential_subnets(rng, np.array([country], dtype=object))
    nat = s.hosts_in(campus, np.zeros(2, dtype=np.int64), rng.integers(2, 255, 2))
    term_start = ctx.start_us - int(rng.uniform(5, 60) * s.DAY_US)
    created = term_start + (rng.exponential(3, n) * s.DAY_US).astype(np.int64)
    plan = np.where(rng.random(n) < 0.85, "free", "pay_as_you_go").astype(object)
    home = s.residential_ips(rng, np.full(n, country, dtype=object))

    homework = ~ctx.corpus.problems.is_code
    pool = np.flatnonzero(homework) if homework.any() else np.arange(len(ctx.corpus.problems))
    per = cfg.problems_per_assignment
    problems = rng.choice(
        pool, size=(cfg.assignments, per), replace=len(pool) < cfg.assignments * per
    )
    deadlines = ((np.arange(cfg.assignments) + 1) * ctx.days // (cfg.assignments + 1)).astype(
        np.int64
    )
    # one work session per (student, assignment), a day or two before the deadline
    student = np.repeat(np.arange(n), cfg.assignments)
    assignment = np.tile(np.arange(cfg.assignments), n)
    day = deadlines[assignment] - rng.integers(0, 3, len(student))
    local = _hour_seconds(rng, len(student), "student")
    starts = ctx.start_us + day * s.DAY_US + ((local - offset * 3600) * s.US_PER_S).astype(np.int64)
    done = rng.random((len(student), per)) < cfg.participation
    keep = (starts >= np.maximum(created[student], ctx.start_us)) & done.any(axis=1)
    keep &= starts < ctx.start_us + ctx.days * s.DAY_US
    student, assignment, starts, done = student[keep], assignment[keep], starts[keep], done[keep]
    session, ts = s.expand_sessions(rng, starts, done.sum(axis=1), cfg.gap_median_s)
    problem = problems[assignment][done]
    step = rng.random(len(ts)) < cfg.step_by_step_rate
    templates = np.array(STUDENT_STEP_TEMPLATES + STUDENT_PLAIN_TEMPLATES, dtype=object)
    which = np.where(
        step,
        rng.integers(0, len(STUDENT_STEP_TEMPLATES), len(ts)),
        len(STUDENT_STEP_TEMPLATES) + rng.integers(0, len(STUDENT_PLAIN_TEMPLATES), len(ts)),
    )
    problems_pool = ctx.corpus.problems
    on_campus = rng.random(len(starts)) < cfg.campus_fraction
    sess_ip = np.where(on_campus, nat[rng.integers(0, 2, len(starts))], home[student])
    account = student[session]
    accounts = Accounts(
        created_us=created,
        email_domain=const(domain, n),
        payment_fingerprint=plan_cards(rng, plan),
        signup_ip=np.where(rng.random(n) < 0.5, nat[0], home),
        country=const(country, n),
        plan=plan,
        org_id=nones(n),
        role=const("student", n),
        ring_id=nones(n),
    )
    calls = Calls(
        account=account,
        ts_us=ts,
        prompt=fill(templates, which, problems_pool.prompts[problem]),
        system_prompt=nones(len(ts)),
        response=np.where(step, problems_pool.worked[problem], problems_pool.short[problem]),
        client_ip=sess_ip[session],
        user_agent=ctx.pick_uas(account, n, "browser", loyalty=0.95),
        model=ctx.pick_models(account, n),
    )
    return Block(accounts, calls)


def cohorts(ctx: Context) -> Block:
    return concat([_empty()] + [cohort(ctx, i) for i in range(ctx.config.cohorts.cohorts)])


def runner(ctx: Context) -> Block:
    """One account sending a whole test set with a chain-of-thought template, in a burst."""
    cfg, rng = ctx.config.benchmarks, ctx.rng
    sets = ctx.corpus.benchmarks or {"problems": ctx.corpus.problems}
    test_set = sets[sorted(sets)[int(rng.integers(len(sets)))]]
    size = min(len(test_set), cfg.max_problems)
    runs = int(rng.integers(1, cfg.runs_max + 1))
    span = ctx.days * s.DAY_US
    starts = ctx.start_us + (rng.random(runs) * span * 0.9).astype(np.int64)
    session, ts = s.expand_sessions(rng, starts, np.full(runs, size), cfg.gap_median_s, 0.5)
    problem = np.tile(np.arange(size), runs)
    code = bool(test_set.is_code[:size].mean() > 0.5)
    templates = np.array(BENCH_CODE_TEMPLATES if code else BENCH_MATH_TEMPLATES, dtype=object)
    template = rng.integers(0, len(templates), runs)[session]
    names_m, weights = ctx.models
    model = names_m[rng.choice(len(names_m), size=runs, p=weights)][session]
    country = _one_country(ctx)
    vm = s.hosts_in(
        s.datacenter_subnets(rng, 1), np.zeros(1, dtype=np.int64), rng.integers(2, 255, 1)
    )
    one = np.zeros(len(ts), dtype=np.int64)
    accounts = Accounts(
        created_us=np.array([ctx.start_us - int(rng.uniform(30, 700) * s.DAY_US)]),
        email_domain=s.choice(rng, FREE_MAIL, 1),
        payment_fingerprint=cards(rng, 1, np.ones(1, dtype=bool)),
        signup_ip=s.residential_ips(rng, np.array([country], dtype=object)),
        country=const(country, 1),
        plan=np.array([("pay_as_you_go", "pro")[int(rng.integers(2))]], dtype=object),
        org_id=nones(1),
        role=const("benchmark_runner", 1),
        ring_id=nones(1),
    )
    calls = Calls(
        account=one,
        ts_us=ts,
        prompt=fill(templates, template, test_set.prompts[problem]),
        system_prompt=nones(len(ts)),
        response=test_set.worked[problem],
        client_ip=const(vm[0], len(ts)),
        user_agent=ctx.pick_uas(one, 1, "client", loyalty=1.0),
        model=model,
    )
    return Block(accounts, calls)


def runners(ctx: Context) -> Block:
    return concat([_empty()] + [runner(ctx) for _ in range(ctx.config.benchmarks.runners)])


_INTEGRATOR_REPLIES: tuple[tuple[str, ...], ...] = (
    ("billing", "technical", "account", "other"),
    ("A practical everyday choice, built to last. Light, sturdy and easy to care for.",),
    ("The user is broadly satisfied but wants faster responses.",
     "The writer reports a problem and asks for a fix."),
    ("Hier ist die Übersetzung des Textes.",),
    ('{"people": [], "places": [], "dates": []}',),
    ("no. The post is on topic and civil.", "yes. The post contains a personal attack."),
)  # fmt: skip


def integrator(ctx: Context, number: int) -> Block:
    """One old account, calls around the clock, one fixed template filled with user text."""
    cfg, rng = ctx.config.integrators, ctx.rng
    choice = number % len(INTEGRATOR_TEMPLATES)
    system, template = INTEGRATOR_TEMPLATES[choice]
    replies = np.array(_INTEGRATOR_REPLIES[choice], dtype=object)
    rate = rng.lognormal(np.log(cfg.calls_per_day_median), 0.5)
    n_calls = int(rng.poisson(rate * ctx.days))
    country = _one_country(ctx)
    offset = float(s.utc_offsets(rng, np.array([country], dtype=object))[0])
    day = rng.integers(0, ctx.days, n_calls)
    local = _hour_seconds(rng, n_calls, "service")
    ts = np.sort(
        ctx.start_us + day * s.DAY_US + ((local - offset * 3600) * s.US_PER_S).astype(np.int64)
    )
    ts = np.clip(ts, ctx.start_us, ctx.start_us + ctx.days * s.DAY_US - 1)
    snippets = np.array([t[:400] for t in ctx.corpus.benign.prompts], dtype=object)
    texts = snippets[rng.integers(0, len(snippets), n_calls)]
    servers = s.hosts_in(
        s.datacenter_subnets(rng, 1), np.zeros(3, dtype=np.int64), rng.integers(2, 255, 3)
    )
    one = np.zeros(n_calls, dtype=np.int64)
    accounts = Accounts(
        created_us=np.array(
            [ctx.start_us - int((cfg.min_age_days + rng.exponential(400)) * s.DAY_US)]
        ),
        email_domain=company_domains(rng, 1),
        payment_fingerprint=cards(rng, 1, np.ones(1, dtype=bool)),
        signup_ip=s.residential_ips(rng, np.array([country], dtype=object)),
        country=const(country, 1),
        plan=np.array([("enterprise", "pro")[int(rng.integers(2))]], dtype=object),
        org_id=s.hex_ids(rng, 1, "org_", 8),
        role=const("integrator", 1),
        ring_id=nones(1),
    )
    calls = Calls(
        account=one,
        ts_us=ts,
        prompt=fill(np.array([template], dtype=object), np.zeros(n_calls, dtype=np.int64), texts),
        system_prompt=const(system, n_calls),
        response=replies[rng.integers(0, len(replies), n_calls)],
        client_ip=servers[rng.integers(0, 3, n_calls)],
        user_agent=ctx.pick_uas(one, 1, "client", loyalty=1.0),
        model=ctx.pick_models(one, 1, loyalty=0.98),
    )
    return Block(accounts, calls)


def integrators(ctx: Context) -> Block:
    count = ctx.config.integrators.integrators
    return concat([_empty()] + [integrator(ctx, i) for i in range(count)])
