"""The control plane's loop (spool ingest, scheduled and on-demand detection) and the CLI."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dashboards.app import create_app
from dashboards.control import ControlPlane
from dashboards.settings import DashboardsSettings
from distillguard.cli import main
from ingest.warehouse import Warehouse
from tests.dashboards.conftest import sign_in
from tests.ingest.factories import call_rows, write_calls


def _segment(spool: Path, name: str, n: int, start: int) -> None:
    (spool / "segments").mkdir(parents=True, exist_ok=True)
    write_calls(spool / "segments" / name, call_rows(n, start=start))


def test_tick_ingests_new_segments_once_and_detects_only_when_stale(
    control: ControlPlane, settings: DashboardsSettings
) -> None:
    assert settings.spool is not None
    assert control.tick() == {"ingested": 0, "detected": None}  # nothing new: no detection
    _segment(settings.spool, "seg-000001.parquet", 12, 0)
    did = control.tick()
    assert did["ingested"] == 12
    assert did["detected"]["run_id"] == 2 and did["detected"]["n_calls"] > 12
    assert control.tick() == {"ingested": 0, "detected": None}  # loaded once, not stale
    assert control.status["ingested_rows"] == 12
    assert control.status["last_detection"]["run_id"] == 2


def test_detection_on_demand_through_the_api(
    settings: DashboardsSettings, control: ControlPlane
) -> None:
    with TestClient(create_app(settings, control)) as client:
        csrf = sign_in(client, "reviewer")
        assert client.post("/api/detect", headers={"x-csrf-token": csrf}).status_code == 202
        did = control.tick()
        assert did["detected"]["run_id"] == 2
        assert client.get("/overview.json").json()["run_id"] == 2
        assert client.get("/api/status").json()["last_detection"]["run_id"] == 2


def test_background_loop_ingests_while_serving(settings: DashboardsSettings) -> None:
    live = settings.model_copy(update={"background": True, "ingest_interval_s": 0.2,
                                       "detect_interval_s": 3600})  # fmt: skip
    assert live.spool is not None
    _segment(live.spool, "seg-000001.parquet", 5, 0)
    with TestClient(create_app(live)) as client:  # the app opens and closes its own plane
        sign_in(client, "viewer")
        deadline = time.monotonic() + 180  # a busy machine detects slowly
        while time.monotonic() < deadline:
            status = client.get("/api/status").json()
            if status["last_detection"]:
                break
            time.sleep(0.2)
        assert status["ingested_rows"] == 5
        assert status["last_detection"]["run_id"] == 2


def _run(argv: list[str], stdin: str = "") -> int:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.stdin = old
    return 0


def test_users_create_reads_the_password_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "u.duckdb"
    argv = ["users", "create", "--username", "ana", "--role", "reviewer", "--db", str(db)]
    assert _run(argv, "a long enough password\n") == 0
    out = capsys.readouterr().out
    assert "created reviewer ana" in out and "password" not in out
    from dashboards.auth import authenticate

    with Warehouse.open(db) as wh:
        assert authenticate(wh, "ana", "a long enough password") is not None


def test_users_create_generates_and_prints_a_password_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "u.duckdb"
    assert _run(["users", "create", "--username", "bo", "--role", "admin", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    password = out.split("password (shown once): ")[1].strip()
    from dashboards.auth import authenticate

    with Warehouse.open(db) as wh:
        user = authenticate(wh, "bo", password)
    assert user is not None and user.role == "admin"
    assert _run(["users", "list", "--db", str(db)]) == 0
    assert "bo\tadmin" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["--username", "a", "--role", "root"], "", "unknown role 'root'"),
        (["--username", "bad name", "--role", "viewer"], "", "invalid username"),
        (["--username", "a", "--role", "viewer"], "short\n", "at least 10 characters"),
    ],
)
def test_users_create_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], stdin: str, message: str
) -> None:
    code = _run(["users", "create", *argv, "--db", str(tmp_path / "u.duckdb")], stdin)
    assert code == 1
    assert message in capsys.readouterr().err


def test_users_create_refuses_a_duplicate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "users",
        "create",
        "--username",
        "a",
        "--role",
        "viewer",
        "--db",
        str(tmp_path / "u.duckdb"),
    ]
    assert _run(argv, "a long enough password\n") == 0
    assert _run(argv, "another long password\n") == 1
    assert "already exists" in capsys.readouterr().err


def test_serve_refuses_a_warehouse_another_process_holds(tmp_path: Path) -> None:
    import subprocess

    from distillguard.processes import CLI

    db = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from ingest.warehouse import Warehouse; "
         f"w = Warehouse.open({str(db)!r}); print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        result = subprocess.run(
            [CLI, "serve", "--db", str(db), "--port", "1"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert result.returncode == 1
    assert (
        "error: the warehouse" in result.stderr and "is held read-write by process" in result.stderr
    )


def test_demo_sign_in_works_and_is_reset_on_each_demo(tmp_path: Path) -> None:
    from dashboards.auth import authenticate
    from dashboards.demo import DEMO_USER, prepare_console

    db = tmp_path / "demo.duckdb"
    first = prepare_console(db)
    second = prepare_console(db)
    with Warehouse.open(db) as wh:
        user = authenticate(wh, DEMO_USER, second)
        assert user is not None and user.role == "admin"
        assert authenticate(wh, DEMO_USER, first) is None


def test_scheduled_detection_uses_the_configured_embedder(
    control: ControlPlane, settings: DashboardsSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detectors.embeddings import default_model_path, model_name
    from detectors.settings import get_settings

    # an operator who set DETECT_MODEL_PATH (a distilled embedder, say) for `distillguard detect`
    # gets the same embedder in the control plane's runs, with the same cache name
    assert settings.spool is not None
    embedder = settings.spool.parent / "my-embedder"
    embedder.symlink_to(default_model_path(), target_is_directory=True)
    monkeypatch.setenv("DETECT_MODEL_PATH", str(embedder))
    get_settings.cache_clear()
    try:
        _segment(settings.spool, "seg-000001.parquet", 12, 0)
        assert control.tick()["detected"] is not None
    finally:
        get_settings.cache_clear()
    assert control.status["last_detection"]["model"] == model_name(embedder)
    assert model_name(embedder).startswith("my-embedder@")
