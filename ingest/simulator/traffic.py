"""Per-call properties every population shares: endpoint, status, tokens, latency."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.simulator.catalog import user_agents
from ingest.simulator.config import TrafficConfig
from ingest.simulator.sampling import encode

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
CHARS_PER_TOKEN = 4.0
MESSAGE_OVERHEAD_TOKENS = 7


def endpoints(
    rng: np.random.Generator,
    ua: np.ndarray,
    account: np.ndarray,
    n_accounts: int,
    cfg: TrafficConfig,
) -> np.ndarray:
    """The endpoint an SDK implies; generic clients keep one endpoint per account."""
    names, implied, _, _ = user_agents()
    by_ua = dict(zip(names, implied, strict=True))
    distinct, index = encode(ua)
    fixed = np.array([by_ua.get(str(u)) for u in distinct], dtype=object)[index]
    prefers_messages = rng.random(n_accounts) < cfg.anthropic_style_rate
    generic = np.where(prefers_messages[account], MESSAGES, CHAT).astype(object)
    result: np.ndarray = np.where(fixed == None, generic, fixed)  # noqa: E711
    return result


def status_codes(rng: np.random.Generator, n: int, cfg: TrafficConfig) -> np.ndarray:
    codes = np.array([200, *cfg.error_rates], dtype=np.int32)
    shares = np.array([1 - sum(cfg.error_rates.values()), *cfg.error_rates.values()])
    result: np.ndarray = codes[rng.choice(len(codes), size=n, p=shares / shares.sum())]
    return result


def tokens(rng: np.random.Generator, chars: np.ndarray, overhead: int = 0) -> np.ndarray:
    """Token counts consistent with text length (about four characters a token, +-10%)."""
    per_token = CHARS_PER_TOKEN * rng.uniform(0.9, 1.1, len(chars))
    result: np.ndarray = (np.ceil(chars / per_token) + overhead).astype(np.int64)
    return result


def char_lengths(values: np.ndarray) -> np.ndarray:
    lengths = pc.utf8_length(pa.array(values, type=pa.string())).fill_null(0)
    result: np.ndarray = lengths.to_numpy(zero_copy_only=False).astype(np.int64)
    return result


def latencies(
    rng: np.random.Generator,
    status: np.ndarray,
    completion: np.ndarray,
    model: np.ndarray,
    cfg: TrafficConfig,
) -> np.ndarray:
    """Time to the last byte: first byte (lognormal) plus generation time; errors answer fast."""
    n = len(status)
    distinct, index = encode(model)
    ms_per_token = np.array([cfg.ms_per_token.get(str(m), 15.0) for m in distinct])[index]
    ok = rng.lognormal(np.log(cfg.first_byte_ms_median), 0.45, n)
    ok += completion * ms_per_token * rng.lognormal(0, 0.2, n)
    rejected = rng.lognormal(np.log(25), 0.5, n)  # refused before reaching the model
    limited = rng.lognormal(np.log(8), 0.5, n)  # the rate limiter answers at once
    failed = rng.lognormal(np.log(1500), 0.8, n)  # upstream errors take a while
    latency = np.select(
        [status == 200, status == 429, status >= 500], [ok, limited, failed], default=rejected
    )
    result: np.ndarray = np.round(latency, 3)
    return result
