"""Benign people and organisations."""

from __future__ import annotations

import numpy as np

from ingest.simulator import sampling as s
from ingest.simulator.block import Accounts, Block, Calls, Context, const, nones
from ingest.simulator.catalog import (
    COMPANY_SUFFIX,
    COMPANY_WORDS,
    FREE_MAIL,
    ORG_SYSTEM_PROMPTS,
    SYSTEM_PROMPTS_PEOPLE,
    TLDS,
)
from ingest.simulator.templates import PEOPLE_REASONING_TEMPLATES, fill


def ask(ctx: Context, n: int, reasoning_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Prompts and responses for ``n`` benign calls; a share asks a problem with some wording."""
    rng, corpus = ctx.rng, ctx.corpus
    benign = rng.integers(0, len(corpus.benign), n)
    prompt = corpus.benign.prompts[benign]
    response = corpus.benign.short[benign]
    asks = rng.random(n) < reasoning_rate
    k = int(asks.sum())
    if k:
        problem = rng.integers(0, len(corpus.problems), k)
        templates = np.array(PEOPLE_REASONING_TEMPLATES, dtype=object)
        prompt[asks] = fill(
            templates, rng.integers(0, len(templates), k), corpus.problems.prompts[problem]
        )
        response[asks] = corpus.problems.worked[problem]
    return prompt, response


def cards(rng: np.random.Generator, n: int, has_card: np.ndarray) -> np.ndarray:
    """A payment fingerprint per account that has a card, ``None`` for the others."""
    fingerprints = s.hex_ids(rng, n, "pm_", 16)
    fingerprints[~has_card] = None
    return fingerprints


FREE_WITH_CARD = 0.2  # free-plan accounts that registered a card anyway


def plan_cards(rng: np.random.Generator, plan: np.ndarray) -> np.ndarray:
    """Cards for self-serve accounts: every paying plan has one, some free accounts too."""
    return cards(rng, len(plan), (plan != "free") | (rng.random(len(plan)) < FREE_WITH_CARD))


def people(ctx: Context) -> Block:
    """Individuals: diurnal in their own time zone, heavy-tailed volume, a home address."""
    cfg, rng, n = ctx.config.people, ctx.rng, ctx.config.people.accounts
    codes, weights = s.country_weights()
    country = codes[rng.choice(len(codes), size=n, p=weights)]
    offset = s.utc_offsets(rng, country)
    age_days = 1 + rng.exponential(cfg.account_age_days_mean, n)
    created = ctx.start_us - (age_days * s.DAY_US).astype(np.int64)
    new = rng.random(n) < cfg.signup_in_window_fraction
    created[new] = ctx.start_us + (rng.random(int(new.sum())) * ctx.days * s.DAY_US).astype(
        np.int64
    )
    plan = s.choice(rng, cfg.plans, n)
    payment = plan_cards(rng, plan)
    pairs = rng.permutation(np.flatnonzero(payment != None))  # noqa: E711
    pairs = pairs[: 2 * int(cfg.shared_card_fraction * n / 2)].reshape(-1, 2)
    payment[pairs[:, 1]] = payment[pairs[:, 0]]
    home = s.residential_ips(rng, country)

    rate = rng.lognormal(np.log(cfg.sessions_per_day_median), cfg.sessions_per_day_sigma, n)
    sess_acct = np.repeat(np.arange(n), rng.poisson(rate * ctx.days * 1.1))
    starts, keep = s.local_times(
        rng,
        ctx.start_us,
        ctx.days,
        offset[sess_acct],
        created[sess_acct],
        "people",
        cfg.weekend_factor,
    )
    sess_acct, starts = sess_acct[keep], starts[keep]
    mobile = rng.random(len(sess_acct)) < cfg.mobile_session_rate
    sess_ip = home[sess_acct]
    sess_ip[mobile] = s.residential_ips(rng, country[sess_acct[mobile]])
    lengths = s.geometric_lengths(rng, len(sess_acct), cfg.calls_per_session_mean)
    session, ts = s.expand_sessions(rng, starts, lengths, cfg.gap_median_s)
    account = sess_acct[session]
    prompt, response = ask(ctx, len(ts), cfg.reasoning_question_rate)
    system = np.array(SYSTEM_PROMPTS_PEOPLE, dtype=object)
    system = system[rng.integers(0, len(system), n)]
    system[rng.random(n) >= cfg.system_prompt_rate] = None
    accounts = Accounts(
        created_us=created,
        email_domain=s.choice(rng, FREE_MAIL, n),
        payment_fingerprint=payment,
        signup_ip=home,
        country=country,
        plan=plan,
        org_id=nones(n),
        role=const("person", n),
        ring_id=nones(n),
    )
    calls = Calls(
        account=account,
        ts_us=ts,
        prompt=prompt,
        system_prompt=system[account],
        response=response,
        client_ip=sess_ip[session],
        user_agent=ctx.pick_uas(account, n),
        model=ctx.pick_models(account, n),
    )
    return Block(accounts, calls)


def company_domains(rng: np.random.Generator, n: int) -> np.ndarray:
    """Company e-mail domains such as ``cedar-summit-labs.io``."""
    words = np.array(COMPANY_WORDS, dtype=object)
    suffix = np.array(COMPANY_SUFFIX, dtype=object)
    tlds = np.array(TLDS, dtype=object)
    result: np.ndarray = (
        words[rng.integers(0, len(words), n)]
        + "-"
        + words[rng.integers(0, len(words), n)]
        + "-"
        + suffix[rng.integers(0, len(suffix), n)]
        + "."
        + tlds[rng.integers(0, len(tlds), n)]
    )
    return result


def orgs(ctx: Context) -> Block:
    """Companies: members share a card, a domain, an office /24, working hours and an org_id."""
    cfg, rng, k = ctx.config.orgs, ctx.rng, ctx.config.orgs.orgs
    sizes = np.clip(
        np.round(cfg.members_min + rng.pareto(cfg.members_pareto_shape, k) * 3),
        cfg.members_min,
        cfg.members_max,
    ).astype(np.int64)
    org = np.repeat(np.arange(k), sizes)
    n = len(org)
    codes, weights = s.country_weights()
    org_country = codes[rng.choice(len(codes), size=k, p=weights)]
    org_offset = s.utc_offsets(rng, org_country)
    domain = company_domains(rng, k)
    office = s.residential_subnets(rng, org_country)
    org_id = s.hex_ids(rng, k, "org_", 8)
    org_created = ctx.start_us - ((30 + rng.exponential(500, k)) * s.DAY_US).astype(np.int64)
    created = org_created[org] + (
        rng.random(n) * (ctx.start_us + ctx.days * s.DAY_US - org_created[org])
    ).astype(np.int64)
    company_card = s.hex_ids(rng, k, "pm_", 16)[org]
    own = rng.random(n) > cfg.company_card_fraction
    payment = np.where(own, cards(rng, n, np.ones(n, dtype=bool)), company_card)
    plan = np.array(["team", "enterprise"], dtype=object)[rng.integers(0, 2, k)][org]
    host = rng.integers(10, 250, n)
    office_ip = s.hosts_in(office, org, host)

    rate = rng.lognormal(np.log(cfg.sessions_per_day_median), 0.8, n)
    sess_acct = np.repeat(np.arange(n), rng.poisson(rate * ctx.days))
    starts, keep = s.local_times(
        rng, ctx.start_us, ctx.days, org_offset[org[sess_acct]], created[sess_acct], "office", 0.1
    )
    sess_acct, starts = sess_acct[keep], starts[keep]
    away = rng.random(len(sess_acct)) > cfg.office_fraction
    sess_ip = office_ip[sess_acct]
    sess_ip[away] = s.residential_ips(rng, org_country[org[sess_acct[away]]])
    lengths = s.geometric_lengths(rng, len(sess_acct), cfg.calls_per_session_mean)
    session, ts = s.expand_sessions(rng, starts, lengths, cfg.gap_median_s)
    account = sess_acct[session]
    prompt, response = ask(ctx, len(ts), ctx.config.people.reasoning_question_rate)
    tool = rng.random(k) < 0.5
    names = [str(d).split(".")[0].replace("-", " ").title() for d in domain]
    which = rng.integers(0, len(ORG_SYSTEM_PROMPTS), k)
    org_system = np.array(
        [ORG_SYSTEM_PROMPTS[i].format(org=name) for i, name in zip(which, names, strict=True)],
        dtype=object,
    )
    org_system[~tool] = None
    # members of a company mostly use the company's client; some use a browser
    company_ua = ctx.pick_uas(org[account], k, "client", loyalty=1.0)
    browser_ua = ctx.pick_uas(account, n, "browser")
    ua = np.where(rng.random(len(ts)) < 0.6, company_ua, browser_ua)
    accounts = Accounts(
        created_us=created,
        email_domain=domain[org],
        payment_fingerprint=payment,
        signup_ip=office_ip,
        country=org_country[org],
        plan=plan,
        org_id=org_id[org],
        role=const("org_member", n),
        ring_id=nones(n),
    )
    calls = Calls(
        account=account,
        ts_us=ts,
        prompt=prompt,
        system_prompt=org_system[org[account]],
        response=response,
        client_ip=sess_ip[session],
        user_agent=ua,
        model=ctx.pick_models(account, n),
    )
    return Block(accounts, calls)
