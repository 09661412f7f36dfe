"""Extraction rings: sign-up waves, card groups, proxy pools, partitioned question banks.

A ring's accounts take their country, e-mail domain, plan and user agents from the values benign
people of the same run already have (weighted as they are there), so that no single field value
exists only among ring accounts. What gives a ring away is cross-account structure: shared cards,
shared proxy addresses, sign-up waves, synchronized sessions, one template family over a question
bank, reasoning-eliciting wording at volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.simulator import sampling as s
from ingest.simulator.block import Accounts, Block, Calls, Context, const, nones
from ingest.simulator.catalog import user_agents
from ingest.simulator.people import plan_cards
from ingest.simulator.templates import RING_SYSTEM_PROMPTS, RING_TEMPLATES, fill


@dataclass(frozen=True)
class Observed:
    """Value distributions seen among benign accounts and calls: ``name -> (values, weights)``."""

    values: dict[str, tuple[np.ndarray, np.ndarray]]

    @classmethod
    def of(cls, block: Block) -> Observed:
        people = block.accounts.role == "person"
        source = people if people.any() else np.ones(len(block.accounts), dtype=bool)
        columns = {
            "country": block.accounts.country[source],
            "email_domain": block.accounts.email_domain[source],
            "plan": block.accounts.plan[source],
        }
        # user agents weighted by how many accounts use them, not by call volume
        distinct, index = s.encode(block.calls.user_agent)
        pairs = np.unique(block.calls.account * len(distinct) + index)
        columns["user_agent"] = distinct[pairs % len(distinct)]
        if not len(pairs):  # benign accounts but no benign calls: any known client
            columns["user_agent"] = np.array(user_agents()[0], dtype=object)
        values = {}
        for name, column in columns.items():
            distinct, index = s.encode(column)
            counts = np.bincount(index, minlength=len(distinct))
            values[name] = (distinct, counts / counts.sum())
        return cls(values)

    def draw(self, rng: np.random.Generator, name: str, n: int) -> np.ndarray:
        values, weights = self.values[name]
        result: np.ndarray = values[rng.choice(len(values), size=n, p=weights)]
        return result


def split_sizes(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    """``parts`` uneven sizes, each at least 2, summing to ``total``."""
    shares = rng.dirichlet(np.full(parts, 2.0))
    sizes = 2 + np.floor(shares * (total - 2 * parts)).astype(np.int64)
    sizes[np.argmax(shares)] += total - sizes.sum()
    return sizes


def shared_cards(
    rng: np.random.Generator, payment: np.ndarray, fraction: float, largest: int
) -> None:
    """Make ``fraction`` of the card holders share cards in groups of 2..``largest`` (in place)."""
    holders = rng.permutation(np.flatnonzero(payment != None))  # noqa: E711
    holders = holders[: round(fraction * len(holders))]
    i = 0
    while len(holders) - i >= 2:
        size = min(int(rng.integers(2, largest + 1)), len(holders) - i)
        payment[holders[i : i + size]] = payment[holders[i]]
        i += size


def ring(ctx: Context, observed: Observed, number: int, n: int) -> Block:
    """One ring of ``n`` accounts."""
    cfg, rng = ctx.config.rings, ctx.rng
    ring_id = f"ring_{number + 1}"
    end_us = ctx.start_us + ctx.days * s.DAY_US
    # sign-up waves, some before the window (aged accounts), most inside it
    waves = ctx.start_us + (rng.uniform(-10, max(1, ctx.days - 3), cfg.waves_per_ring) * s.DAY_US)
    wave = rng.integers(0, cfg.waves_per_ring, n)
    spread = np.abs(rng.normal(0, cfg.wave_spread_hours, n)) * 3600 * s.US_PER_S
    created = (waves[wave] + spread).astype(np.int64)
    first = np.maximum(created + int(3600 * s.US_PER_S), ctx.start_us)
    lifetime = rng.lognormal(np.log(cfg.lifetime_days_median), 0.5, n) * s.DAY_US
    last = np.minimum(first + lifetime.astype(np.int64), end_us)

    # a ring claims countries benign people have, concentrated on a few of them
    claimed = np.unique(observed.draw(rng, "country", int(rng.integers(2, 6))))
    home = rng.integers(0, len(claimed), n)
    country = claimed[home]
    offset = s.utc_offsets(rng, country)
    plan = observed.draw(rng, "plan", n)
    payment = plan_cards(rng, plan)
    shared_cards(rng, payment, cfg.shared_card_fraction, cfg.card_group_max)

    # proxy pool: residential-looking addresses in the claimed countries, plus datacenter /24s;
    # exits are mostly geo-targeted to the account's claimed country
    pool_country = np.sort(
        rng.integers(0, len(claimed), int(np.ceil(n * cfg.proxy_ips_per_account)))
    )
    pool = s.residential_ips(rng, claimed[pool_country])
    pool_bounds = np.searchsorted(pool_country, np.arange(len(claimed) + 1))

    def proxies(accounts: np.ndarray) -> np.ndarray:
        lo, hi = pool_bounds[home[accounts]], pool_bounds[home[accounts] + 1]
        local = lo + np.floor(rng.random(len(accounts)) * (hi - lo)).astype(np.int64)
        anywhere = rng.integers(0, len(pool), len(accounts))
        matched = (rng.random(len(accounts)) < cfg.geo_match_rate) & (hi > lo)
        result: np.ndarray = pool[np.where(matched, local, anywhere)]
        return result

    subnets = s.datacenter_subnets(rng, cfg.datacenter_subnets)

    active_days = np.maximum(last - first, 0) / s.DAY_US
    rate = rng.lognormal(
        np.log(cfg.calls_per_account_day_median), cfg.calls_per_account_day_sigma, n
    )
    sess_acct = np.repeat(
        np.arange(n), rng.poisson(rate * active_days * 1.05 / cfg.calls_per_session_mean)
    )
    profile = "people" if cfg.timing == "human" else "flat"
    starts, keep = s.local_times(
        rng,
        ctx.start_us,
        ctx.days,
        offset[sess_acct],
        first[sess_acct],
        profile,
        0.9,
        last[sess_acct],
    )
    # a shared scheduler: some sessions start on ring-wide slots (a few minutes' jitter) that
    # fall inside the account's active period
    slots = np.sort(ctx.start_us + rng.random(max(1, 4 * ctx.days)) * ctx.days * s.DAY_US)
    lo = np.searchsorted(slots, first[sess_acct])
    hi = np.searchsorted(slots, last[sess_acct])
    synced = (rng.random(len(sess_acct)) < cfg.sync_fraction) & (hi > lo)
    pick = lo[synced] + np.floor(rng.random(int(synced.sum())) * (hi - lo)[synced]).astype(int)
    jitter = rng.normal(0, 180, len(pick)) * s.US_PER_S
    starts[synced] = (slots[pick] + jitter).astype(np.int64)
    keep = (keep | synced) & (starts >= first[sess_acct]) & (starts < last[sess_acct])
    sess_acct, starts = sess_acct[keep], starts[keep]
    via_dc = (
        rng.random(len(starts)) < cfg.datacenter_rate
        if len(subnets)
        else np.zeros(len(starts), dtype=bool)
    )
    sess_ip = proxies(sess_acct)
    if via_dc.any():
        dc = rng.integers(0, len(subnets), int(via_dc.sum()))
        sess_ip[via_dc] = s.hosts_in(subnets, dc, rng.integers(2, 255, len(dc)))
    lengths = s.geometric_lengths(rng, len(starts), cfg.calls_per_session_mean)
    session, ts = s.expand_sessions(rng, starts, lengths, cfg.gap_median_s, gap_sigma=0.8)
    account = sess_acct[session]

    # the question bank, partitioned across accounts in proportion to their calls; each account
    # walks its own share in order, so it repeats only when the bank is smaller than the traffic
    problems = ctx.corpus.problems
    wanted = max(1, min(cfg.bank_size, len(problems), len(ts)))
    bank = rng.choice(len(problems), size=wanted, replace=False)
    counts = np.bincount(account, minlength=n)
    bounds = np.floor(np.concatenate([[0], np.cumsum(counts)]) * wanted / max(1, len(ts)))
    bounds = bounds.astype(np.int64)
    share = np.maximum(bounds[1:] - bounds[:-1], 1)
    order = np.lexsort((ts, account))
    rank = np.empty(len(ts), dtype=np.int64)
    firsts = np.searchsorted(account[order], np.arange(n))
    rank[order] = np.arange(len(ts)) - firsts[account[order]]
    question = bank[np.minimum(bounds[account] + rank % share[account], wanted - 1)]
    templates = np.array(RING_TEMPLATES, dtype=object)[
        rng.choice(
            len(RING_TEMPLATES),
            size=min(cfg.paraphrases_per_ring, len(RING_TEMPLATES)),
            replace=False,
        )
    ]
    prompt = fill(templates, rng.integers(0, len(templates), len(ts)), problems.prompts[question])
    response = problems.worked[question].copy()
    cover = rng.random(len(ts)) < cfg.cover_fraction
    benign = rng.integers(0, len(ctx.corpus.benign), int(cover.sum()))
    prompt[cover] = ctx.corpus.benign.prompts[benign]
    response[cover] = ctx.corpus.benign.short[benign]

    ring_uas = observed.draw(rng, "user_agent", int(rng.integers(1, 4)))
    accounts = Accounts(
        created_us=created,
        email_domain=observed.draw(rng, "email_domain", n),
        payment_fingerprint=payment,
        signup_ip=proxies(np.arange(n)),
        country=country,
        plan=plan,
        org_id=nones(n),
        role=const("ring_member", n),
        ring_id=const(ring_id, n),
    )
    calls = Calls(
        account=account,
        ts_us=ts,
        prompt=prompt,
        system_prompt=const(
            RING_SYSTEM_PROMPTS[int(rng.integers(len(RING_SYSTEM_PROMPTS)))], len(ts)
        ),
        response=response,
        client_ip=sess_ip[session],
        user_agent=s.per_account(rng, account, n, ring_uas, None, loyalty=0.95),
        model=ctx.pick_models(account, n, loyalty=0.9),
    )
    return Block(accounts, calls)


def rings(ctx: Context, observed: Observed) -> list[Block]:
    cfg = ctx.config.rings
    if cfg.rings == 0:
        return []
    sizes = split_sizes(ctx.rng, cfg.accounts, cfg.rings)
    return [ring(ctx, observed, i, int(size)) for i, size in enumerate(sizes)]
