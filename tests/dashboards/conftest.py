"""Fixtures: a small simulated population with one ring, detected once, served in-process.

Attacker-written prompts (XSS payloads) are planted in one ring member's calls before detection,
so every page that shows prompt text is exercised with them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from dashboards import auth
from dashboards.app import create_app
from dashboards.control import ControlPlane
from dashboards.settings import DashboardsSettings
from detectors.pipeline import run_detection
from ingest.loader import ingest_file
from ingest.simulator import SimulationConfig, simulate, write
from ingest.warehouse import Warehouse

PASSWORD = "correct horse battery"
XSS = (
    "<script>alert('xss-script')</script>",
    "<img src=x onerror=\"alert('xss-img')\">",
    "<a href=\"javascript:alert('xss-link')\">click</a>",
    "</script><script>alert('xss-break')</script>",
    '<b onmouseover="alert(\'xss-hover\')">hover</b><br><a href="javascript:alert(1)">x</a>',
)


@dataclass(frozen=True)
class World:
    db: Path
    ring_id: str
    members: list[str]
    xss_account: str


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A warehouse after one detection run, with users and XSS prompts. Copy it before writing."""
    root = tmp_path_factory.mktemp("dash")
    write(simulate(SimulationConfig(seed=3).scaled(0.15), corpus=None), root / "sim")
    db = root / "world.duckdb"
    with Warehouse.open(db) as wh:
        ingest_file(wh, root / "sim" / "accounts.parquet", "accounts")
        ingest_file(wh, root / "sim" / "calls.parquet", "calls")
        member = wh.scalar(
            "SELECT account_id FROM read_parquet($p) WHERE is_fraud ORDER BY account_id LIMIT 1",
            {"p": str(root / "sim" / "labels.parquet")},
        )
        for i, payload in enumerate(XSS):
            wh.execute(
                "INSERT INTO calls (call_id, ts, account_id, prompt, user_agent, batch_id) "
                "VALUES ($id, $ts, $a, $p, $ua, 0)",
                {"id": f"xss-{i}", "ts": datetime.now(UTC), "a": member, "p": payload,
                 "ua": payload},
            )  # fmt: skip
        run_detection(wh, embed_budget=0, device="cpu")
        _plant_embeddings(wh)
        for name in ("viewer", "reviewer", "admin"):
            auth.create_user(wh, name, name, PASSWORD)
        auth.create_user(wh, "reviewer2", "reviewer", PASSWORD)
        ring_id = wh.scalar(
            "SELECT ring_id FROM rings WHERE flagged ORDER BY score DESC, ring_id LIMIT 1"
        )
        members = [
            r[0]
            for r in wh.fetchall(
                "SELECT account_id FROM flags WHERE ring_id = $g AND flagged ORDER BY 1",
                {"g": ring_id},
            )
        ]
    return World(db, ring_id, members, member)


def _plant_embeddings(wh: Warehouse) -> None:
    """Embeddings for 60 prompts in three clusters (the model is not loaded in unit tests)."""
    prompts = [r[0] for r in wh.fetchall(
        "SELECT DISTINCT md5(prompt) FROM calls ORDER BY 1 LIMIT 57")]  # fmt: skip
    prompts += [
        r[0] for r in wh.fetchall("SELECT md5(prompt) FROM calls WHERE call_id LIKE 'xss-%'")
    ]
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    for i, h in enumerate(prompts):
        vector = (centres[i % 3] + 0.05 * rng.normal(size=16)).astype(np.float32).tolist()
        wh.execute(
            "INSERT INTO embeddings VALUES ($h, 'test-model', $v, now())", {"h": h, "v": vector}
        )
        wh.execute(
            "INSERT INTO prompt_clusters VALUES ($h, 'test-model', $c, 0.9)",
            {"h": h, "c": f"e{i % 3}"},
        )


@pytest.fixture
def db(world: World, tmp_path: Path) -> Path:
    target = tmp_path / "console.duckdb"
    shutil.copyfile(world.db, target)
    return target


@pytest.fixture
def settings(db: Path, tmp_path: Path) -> DashboardsSettings:
    return DashboardsSettings(
        db=db, spool=tmp_path / "spool", state=tmp_path / "state.json", background=False
    )


@pytest.fixture
def control(settings: DashboardsSettings) -> Iterator[ControlPlane]:
    plane = ControlPlane(settings)
    yield plane
    plane.close()


@pytest.fixture
def client(settings: DashboardsSettings, control: ControlPlane) -> Iterator[TestClient]:
    with TestClient(create_app(settings, control)) as test_client:
        yield test_client


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign ``client`` in; returns the session's CSRF token."""
    response = client.post(
        "/signin", data={"username": username, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return str(client.get("/api/session").json()["csrf_token"])


@pytest.fixture
def reviewer(client: TestClient) -> tuple[TestClient, str]:
    return client, sign_in(client, "reviewer")
