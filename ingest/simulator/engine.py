"""Run every population, join them, and turn the result into the contract's Arrow tables."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ingest.contract import ACCOUNTS_ARROW_SCHEMA, CALLS_ARROW_SCHEMA
from ingest.simulator import sampling as s
from ingest.simulator import traffic
from ingest.simulator.block import Block, Context, concat
from ingest.simulator.builtin import builtin_corpus
from ingest.simulator.catalog import user_agents
from ingest.simulator.config import SimulationConfig
from ingest.simulator.corpus import Corpus, load_corpus
from ingest.simulator.exceptions import SimulatorError
from ingest.simulator.hard_negatives import cohorts, integrators, runners
from ingest.simulator.people import orgs, people
from ingest.simulator.rings import Observed, rings

LABELS_ARROW_SCHEMA = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("is_fraud", pa.bool_(), nullable=False),
        pa.field("ring_id", pa.string()),
        pa.field("role", pa.string(), nullable=False),
    ]
)
FILES = {"accounts": "accounts.parquet", "calls": "calls.parquet", "labels": "labels.parquet"}
ROLES = ("person", "org_member", "student", "benchmark_runner", "integrator", "ring_member")
_STREAMS = ("corpus", "people", "orgs", "cohorts", "runners", "integrators", "rings", "finish")


@dataclass(frozen=True)
class SimulationResult:
    """The three tables a simulation produces, with the config and corpus that made them."""

    accounts: pa.Table
    calls: pa.Table
    labels: pa.Table
    config: SimulationConfig
    corpus_source: str

    def summary(self) -> dict[str, Any]:
        """Counts a person checks first: accounts, calls, rings, accounts per role."""
        roles = Counter(self.labels.column("role").to_pylist())
        ring_ids = {r for r in self.labels.column("ring_id").to_pylist() if r is not None}
        ts = self.calls.column("ts")
        return {
            "accounts": self.accounts.num_rows,
            "calls": self.calls.num_rows,
            "rings": len(ring_ids),
            "roles": {role: roles.get(role, 0) for role in ROLES},
            "first_call": ts[0].as_py().isoformat() if len(ts) else None,
            "last_call": ts[-1].as_py().isoformat() if len(ts) else None,
            "corpus": self.corpus_source,
        }


def _ua_weights() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    names, _, browser, shares = user_agents()
    return np.array(names, dtype=object), np.array(shares), np.array(browser, dtype=bool)


def simulate(
    config: SimulationConfig | None = None, corpus: Corpus | Path | None = None
) -> SimulationResult:
    """Generate accounts, calls and labels. The same config (seed included) gives the same tables.

    ``corpus`` is a folder of the public prompt sets, an already loaded :class:`Corpus`, or
    ``None`` for the built-in generator. Each population has its own random stream, so changing
    one population's knobs leaves the others' output unchanged.
    """
    config = config or SimulationConfig()
    seeds = np.random.SeedSequence(config.seed).spawn(len(_STREAMS))
    streams = {
        name: np.random.default_rng(seed) for name, seed in zip(_STREAMS, seeds, strict=True)
    }
    if isinstance(corpus, Path):
        corpus = load_corpus(corpus, streams["corpus"])
    elif corpus is None:
        corpus = builtin_corpus(streams["corpus"])
    uas, ua_weights, ua_browser = _ua_weights()
    start_us = s.to_us(config.start)

    def context(stream: str) -> Context:
        return Context(streams[stream], config, corpus, start_us, uas, ua_weights, ua_browser)

    benign = concat(
        [
            people(context("people")),
            orgs(context("orgs")),
            cohorts(context("cohorts")),
            runners(context("runners")),
            integrators(context("integrators")),
        ]
    )
    if not len(benign.accounts) and config.rings.rings:
        raise SimulatorError("rings need a benign population to hide in: set at least one account")
    ring_blocks = rings(context("rings"), Observed.of(benign)) if config.rings.rings else []
    everything = concat([benign, *ring_blocks])
    end_us = start_us + config.days * s.DAY_US
    inside = (everything.calls.ts_us >= start_us) & (everything.calls.ts_us < end_us)
    everything = Block(everything.accounts, everything.calls.take(inside))
    return _tables(everything, config, streams["finish"], corpus.source)


def _tables(
    block: Block, config: SimulationConfig, rng: np.random.Generator, source: str
) -> SimulationResult:
    acc, calls = block.accounts, block.calls
    n = len(acc)
    account_ids = s.hex_ids(rng, n, "acct_", 12)
    n_keys = rng.choice([1, 2, 3], size=n, p=[0.7, 0.2, 0.1])
    key_ids = s.hex_ids(rng, int(n_keys.sum()), "key_", 10)
    key_offset = np.cumsum(n_keys) - n_keys

    order = np.argsort(calls.ts_us, kind="stable")
    account = calls.account[order]
    ts = calls.ts_us[order]
    prompt, system = calls.prompt[order], calls.system_prompt[order]
    response, model, ua = calls.response[order].copy(), calls.model[order], calls.user_agent[order]
    m = len(ts)
    status = traffic.status_codes(rng, m, config.traffic)
    failed = status != 200
    response[failed] = None
    prompt_tokens = traffic.tokens(
        rng,
        traffic.char_lengths(prompt) + traffic.char_lengths(system),
        traffic.MESSAGE_OVERHEAD_TOKENS,
    )
    completion = np.where(failed, 0, traffic.tokens(rng, traffic.char_lengths(response)))
    key = key_ids[key_offset[account] + (rng.random(m) * n_keys[account]).astype(np.int64)]

    columns = {
        "call_id": s.uuid4s(rng, m),
        "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "account_id": account_ids[account],
        "api_key_id": key,
        "client_ip": calls.client_ip[order],
        "user_agent": ua,
        "endpoint": traffic.endpoints(rng, ua, account, n, config.traffic),
        "model": model,
        "prompt": prompt,
        "system_prompt": system,
        "response": response,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "status_code": status,
        "latency_ms": traffic.latencies(rng, status, completion, model, config.traffic),
    }
    call_table = pa.table(
        [pa.array(columns[f.name], type=f.type) for f in CALLS_ARROW_SCHEMA],
        schema=CALLS_ARROW_SCHEMA,
    )
    shuffle = rng.permutation(n)  # row order must not group a population together
    account_columns = {
        "account_id": account_ids,
        "created_at": pa.array(acc.created_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "email_domain": acc.email_domain,
        "payment_fingerprint": acc.payment_fingerprint,
        "signup_ip": acc.signup_ip,
        "country": acc.country,
        "plan": acc.plan,
        "org_id": acc.org_id,
    }
    account_table = pa.table(
        [pa.array(account_columns[f.name], type=f.type) for f in ACCOUNTS_ARROW_SCHEMA],
        schema=ACCOUNTS_ARROW_SCHEMA,
    ).take(shuffle)
    labels = pa.table(
        [
            pa.array(account_ids, pa.string()),
            pa.array(acc.role == "ring_member", pa.bool_()),
            pa.array(acc.ring_id, pa.string()),
            pa.array(acc.role, pa.string()),
        ],
        schema=LABELS_ARROW_SCHEMA,
    ).take(shuffle)
    return SimulationResult(account_table, call_table, labels, config, source)


def write(result: SimulationResult, out_dir: Path) -> dict[str, Path]:
    """Write ``accounts.parquet``, ``calls.parquet`` and ``labels.parquet`` into ``out_dir``.

    Each file is written beside its final name and renamed into place only when all three are
    complete, so an interrupted run never leaves a half-written file under a final name.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimulatorError(
            f"cannot create output folder {out_dir}: {exc.strerror or exc}"
        ) from None
    if not out_dir.is_dir():
        raise SimulatorError(f"output path {out_dir} exists and is not a folder")
    tables = {"accounts": result.accounts, "calls": result.calls, "labels": result.labels}
    paths = {name: out_dir / file for name, file in FILES.items()}
    partial = {name: out_dir / f".{file}.partial" for name, file in FILES.items()}
    try:
        for name, table in tables.items():
            pq.write_table(table, partial[name], compression="zstd")
        for name in tables:
            os.replace(partial[name], paths[name])
    except OSError as exc:
        for path in partial.values():
            path.unlink(missing_ok=True)
        raise SimulatorError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None
    return paths
