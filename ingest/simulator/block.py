"""What each population generator returns: its accounts and its calls, as parallel numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ingest.simulator.config import SimulationConfig
from ingest.simulator.corpus import Corpus
from ingest.simulator.sampling import per_account


@dataclass
class Accounts:
    """Account columns (object arrays; ``None`` where a value is absent) plus the labels."""

    created_us: np.ndarray
    email_domain: np.ndarray
    payment_fingerprint: np.ndarray
    signup_ip: np.ndarray
    country: np.ndarray
    plan: np.ndarray
    org_id: np.ndarray
    role: np.ndarray
    ring_id: np.ndarray

    def __len__(self) -> int:
        return len(self.created_us)


@dataclass
class Calls:
    """Call columns; ``account`` indexes the population's own :class:`Accounts`."""

    account: np.ndarray
    ts_us: np.ndarray
    prompt: np.ndarray
    system_prompt: np.ndarray
    response: np.ndarray
    client_ip: np.ndarray
    user_agent: np.ndarray
    model: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_us)

    def take(self, mask: np.ndarray) -> Calls:
        return Calls(**{f.name: getattr(self, f.name)[mask] for f in fields(Calls)})


@dataclass
class Block:
    accounts: Accounts
    calls: Calls


def concat(blocks: list[Block]) -> Block:
    """One block from many, with call ``account`` indices shifted to the joined accounts."""
    offsets = np.cumsum([0] + [len(b.accounts) for b in blocks])
    accounts = Accounts(
        **{
            f.name: np.concatenate([getattr(b.accounts, f.name) for b in blocks])
            for f in fields(Accounts)
        }
    )
    columns = {
        f.name: np.concatenate([getattr(b.calls, f.name) for b in blocks])
        for f in fields(Calls)
        if f.name != "account"
    }
    account = np.concatenate([b.calls.account + o for b, o in zip(blocks, offsets, strict=False)])
    return Block(accounts, Calls(account=account, **columns))


def nones(n: int) -> np.ndarray:
    return np.full(n, None, dtype=object)


def const(value: object, n: int) -> np.ndarray:
    return np.full(n, value, dtype=object)


@dataclass
class Context:
    """What every generator needs: its random generator, the config, the corpus and the window."""

    rng: np.random.Generator
    config: SimulationConfig
    corpus: Corpus
    start_us: int
    uas: np.ndarray
    ua_weights: np.ndarray
    ua_browser: np.ndarray

    @property
    def days(self) -> int:
        return self.config.days

    @property
    def models(self) -> tuple[np.ndarray, np.ndarray]:
        names = np.array(list(self.config.traffic.models), dtype=object)
        weights = np.array(list(self.config.traffic.models.values()), dtype=float)
        return names, weights / weights.sum()

    def pick_models(
        self, account: np.ndarray, n_accounts: int, loyalty: float = 0.85
    ) -> np.ndarray:
        names, weights = self.models
        return per_account(self.rng, account, n_accounts, names, weights, loyalty)

    def pick_uas(
        self, account: np.ndarray, n_accounts: int, kind: str = "any", loyalty: float = 0.85
    ) -> np.ndarray:
        """User agents per call: ``kind`` is ``any``, ``browser`` or ``client`` (SDKs, tools)."""
        mask = {
            "any": np.ones(len(self.uas), dtype=bool),
            "browser": self.ua_browser,
            "client": ~self.ua_browser,
        }[kind]
        return per_account(
            self.rng, account, n_accounts, self.uas[mask], self.ua_weights[mask], loyalty
        )
