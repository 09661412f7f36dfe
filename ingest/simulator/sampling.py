"""Vectorised building blocks: random ids, IP addresses, diurnal session times, sessions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ingest.simulator.catalog import COUNTRIES, DATACENTER_PREFIXES

US_PER_S = 1_000_000
DAY_US = 86_400 * US_PER_S


def hex_ids(rng: np.random.Generator, n: int, prefix: str, nbytes: int = 12) -> np.ndarray:
    """``n`` ids ``prefix + 2*nbytes hex digits``, built without a Python loop."""
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    digits = np.frombuffer(raw.tobytes().hex().encode("ascii"), dtype=f"S{2 * nbytes}")
    result: np.ndarray = (prefix + digits.astype(f"U{2 * nbytes}")).astype(object)
    return result


def uuid4s(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random version-4 UUID strings."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = np.frombuffer(raw.tobytes().hex().encode("ascii"), dtype=np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src in ((0, 0), (9, 8), (14, 12), (19, 16), (24, 20)):
        width = {0: 8, 24: 12}.get(dst, 4)
        out[:, dst : dst + width] = hexed[:, src : src + width]
    result: np.ndarray = out.view("S36").ravel().astype("U36").astype(object)
    return result


def ip_strings(*octets: np.ndarray) -> np.ndarray:
    """Dotted quads from four integer arrays."""
    parts = [np.asarray(o).astype(np.int64).astype(str).astype(object) for o in octets]
    result: np.ndarray = parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[3]
    return result


def residential_subnets(rng: np.random.Generator, countries: np.ndarray) -> np.ndarray:
    """One home-network /24 per entry, in an address block of that country: an (n, 3) array."""
    countries = np.asarray(countries, dtype=object)
    first = np.empty(len(countries), dtype=np.int64)
    for code in np.unique(countries):
        mask = countries == code
        first[mask] = rng.choice(COUNTRIES[str(code)][2], size=int(mask.sum()))
    n = len(countries)
    return np.column_stack([first, rng.integers(0, 256, n), rng.integers(0, 256, n)])


def residential_ips(rng: np.random.Generator, countries: np.ndarray) -> np.ndarray:
    """One home-network address per entry, in an address block of that country."""
    n = len(countries)
    return hosts_in(residential_subnets(rng, countries), np.arange(n), rng.integers(2, 255, n))


def datacenter_subnets(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` datacenter /24s as an (n, 3) array of their first three octets."""
    pick = rng.integers(0, len(DATACENTER_PREFIXES), n)
    prefixes = np.array(DATACENTER_PREFIXES, dtype=np.int64)[pick]
    return np.column_stack([prefixes, rng.integers(0, 256, n)])


def hosts_in(subnets: np.ndarray, which: np.ndarray, hosts: np.ndarray) -> np.ndarray:
    """Addresses ``subnets[which[i]] . hosts[i]``."""
    chosen = subnets[which]
    return ip_strings(chosen[:, 0], chosen[:, 1], chosen[:, 2], hosts)


def country_weights() -> tuple[np.ndarray, np.ndarray]:
    codes = np.array(list(COUNTRIES), dtype=object)
    weights = np.array([COUNTRIES[c][0] for c in codes])
    return codes, weights / weights.sum()


def utc_offsets(rng: np.random.Generator, countries: np.ndarray) -> np.ndarray:
    """A UTC offset (hours) for each entry, drawn among its country's time zones."""
    offsets = np.empty(len(countries))
    for code in np.unique(countries):
        mask = countries == code
        offsets[mask] = rng.choice(COUNTRIES[str(code)][1], size=int(mask.sum()))
    return offsets


def encode(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct values, index of each entry's value)`` for a string array without nulls."""
    encoded = pa.array(values, type=pa.string()).dictionary_encode()
    distinct = np.array(encoded.dictionary.to_pylist(), dtype=object)
    return distinct, encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def choice(rng: np.random.Generator, options: dict[str, float], n: int) -> np.ndarray:
    """``n`` draws from ``{value: weight}``."""
    values = np.array(list(options), dtype=object)
    weights = np.array(list(options.values()), dtype=float)
    return values[rng.choice(len(values), size=n, p=weights / weights.sum())]


def per_account(
    rng: np.random.Generator,
    account: np.ndarray,
    n_accounts: int,
    options: Sequence[object] | np.ndarray,
    weights: np.ndarray | None = None,
    loyalty: float = 0.85,
) -> np.ndarray:
    """Per call: the account's usual option with probability ``loyalty``, else any option."""
    values = np.asarray(options, dtype=object)
    p = None if weights is None else weights / weights.sum()
    usual = rng.choice(len(values), size=n_accounts, p=p)
    other = rng.choice(len(values), size=len(account), p=p)
    stay = rng.random(len(account)) < loyalty
    result: np.ndarray = values[np.where(stay, usual[account], other)]
    return result


# --- time ---------------------------------------------------------------------------------------


def _bump(hours: np.ndarray, centre: float, width: float) -> np.ndarray:
    distance = np.minimum(np.abs(hours - centre), 24 - np.abs(hours - centre))
    result: np.ndarray = np.exp(-((distance / width) ** 2))
    return result


_H = np.arange(24) + 0.5
DIURNAL: dict[str, np.ndarray] = {
    # people: mid-morning, afternoon and evening peaks, quiet at night
    "people": 0.03 + _bump(_H, 11, 2.5) + 0.9 * _bump(_H, 15.5, 2.5) + 0.8 * _bump(_H, 21, 2),
    # office: working hours with a lunch dip
    "office": 0.01 + _bump(_H, 10.5, 1.8) + 0.9 * _bump(_H, 15, 2) - 0.3 * _bump(_H, 12.5, 0.7),
    # students: afternoons, evenings and late nights before a deadline
    "student": 0.05 + 0.5 * _bump(_H, 15, 2.5) + _bump(_H, 21.5, 2.5),
    # services: round the clock, following their own users a little
    "service": 0.6 + 0.4 * _bump(_H, 14, 5),
    "flat": np.ones(24),
}
for _name, _weights in DIURNAL.items():
    DIURNAL[_name] = np.clip(_weights, 0.001, None) / np.clip(_weights, 0.001, None).sum()


def to_us(moment: dt.datetime) -> int:
    return int(moment.timestamp() * US_PER_S)


def local_times(
    rng: np.random.Generator,
    start_us: int,
    days: int,
    offset_h: np.ndarray,
    first_us: np.ndarray,
    profile: str,
    weekend_factor: float = 1.0,
    last_us: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Session start times: a local day and a local hour from the profile, converted to UTC.

    Returns ``(ts_us, keep)``; entries outside ``[max(start, first_us), min(end, last_us))`` or
    thinned away on weekends have ``keep`` False.
    """
    n = len(offset_h)
    end_us = start_us + days * DAY_US
    lo = np.clip((first_us - start_us) // DAY_US - 1, -1, days)
    hi = np.full(n, days) if last_us is None else np.clip((last_us - start_us) // DAY_US, lo, days)
    day = lo + np.floor(rng.random(n) * (hi + 1 - lo)).astype(np.int64)
    cdf = np.cumsum(DIURNAL[profile])
    hour = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), 23)
    seconds = hour * 3600 + rng.random(n) * 3600
    ts = start_us + day * DAY_US + ((seconds - offset_h * 3600) * US_PER_S).astype(np.int64)
    weekday = (dt.datetime.fromtimestamp(start_us / US_PER_S, dt.UTC).weekday() + day) % 7
    weekend_drop = (weekday >= 5) & (rng.random(n) > weekend_factor)
    keep = (ts >= np.maximum(first_us, start_us)) & (ts < end_us) & ~weekend_drop
    if last_us is not None:
        keep &= ts < last_us
    return ts, keep


def expand_sessions(
    rng: np.random.Generator,
    starts_us: np.ndarray,
    lengths: np.ndarray,
    gap_median_s: float,
    gap_sigma: float = 0.9,
) -> tuple[np.ndarray, np.ndarray]:
    """Calls of each session: ``(session index per call, ts_us)`` with lognormal gaps."""
    lengths = np.asarray(lengths, dtype=np.int64)
    session = np.repeat(np.arange(len(lengths)), lengths)
    gaps = rng.lognormal(np.log(gap_median_s), gap_sigma, size=len(session)) * US_PER_S
    firsts = np.cumsum(lengths) - lengths
    gaps[firsts[lengths > 0]] = 0
    elapsed = np.cumsum(gaps)
    base = elapsed[firsts[lengths > 0]]
    offsets = elapsed - np.repeat(base, lengths[lengths > 0])
    return session, np.asarray(starts_us)[session] + offsets.astype(np.int64)


def geometric_lengths(rng: np.random.Generator, n: int, mean: float) -> np.ndarray:
    """Session lengths >= 1 with the given mean."""
    result: np.ndarray = rng.geometric(1.0 / mean, size=n).astype(np.int64)
    return result
