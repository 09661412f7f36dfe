"""``distillguard demo``: the whole pipeline on the embedded defaults, start to finish.

Each stage is a function of the demo's folder, so a stage can be read on its own. Stages print what
they did; nothing here is faked: the demo runs the same code paths as the individual commands.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer

from ingest.warehouse import Warehouse


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo writes everything (a fresh folder each run)."""

    root: Path

    @property
    def sim(self) -> Path:
        return self.root / "sim"

    @property
    def db(self) -> Path:
        return self.root / "distillguard.duckdb"

    @property
    def state(self) -> Path:
        return self.root / "distillguard-state.json"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def _say(text: str) -> None:
    typer.secho(text, bold=True)


def stage_simulate(paths: DemoPaths, seed: int, scale: float, corpus: Path | None) -> None:
    """Simulate a population with rings and hard negatives."""
    from ingest.simulator import SimulationConfig, simulate, write

    _say(f"1. simulating traffic (seed {seed}, scale {scale}, corpus {corpus or 'built-in'})")
    config = SimulationConfig(seed=seed)
    if scale != 1.0:
        config = config.scaled(scale)
    result = simulate(config, corpus=corpus)
    write(result, paths.sim)
    typer.echo(
        f"   {result.accounts.num_rows:,} accounts, {result.calls.num_rows:,} calls -> {paths.sim}"
    )


def stage_ingest(paths: DemoPaths) -> None:
    """Load the simulated exports into a fresh warehouse, exactly once."""
    from ingest.loader import ingest_file

    _say(f"2. ingesting into {paths.db}")
    with Warehouse.open(paths.db) as wh:
        for kind, name in (("accounts", "accounts.parquet"), ("calls", "calls.parquet")):
            report = ingest_file(wh, paths.sim / name, kind)  # type: ignore[arg-type]
            typer.echo(
                f"   {kind}: {report.rows_loaded:,} loaded, {report.rows_duplicate:,} duplicate, "
                f"{report.rows_quarantined:,} quarantined ({report.seconds:.2f} s)"
            )


def _replay_sample(paths: DemoPaths, accounts: int, per_account: int) -> list[dict[str, Any]]:
    """The first calls of a sample of ring accounts, in time order.

    Every replayed call reaches the gateway from 127.0.0.1 within seconds, which is itself a
    shared network and synchronised timing: replaying benign accounts this way would link them like
    a ring. So the demo replays ring accounts only, whose keys the console can then suspend.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    labels = pq.read_table(paths.sim / "labels.parquet")
    calls = pq.read_table(
        paths.sim / "calls.parquet",
        columns=["account_id", "ts", "model", "prompt", "system_prompt", "user_agent"],
    )
    chosen = sorted(labels.filter(pc.field("is_fraud")).column("account_id").to_pylist())[:accounts]
    picked = calls.filter(pc.is_in(calls["account_id"], pa.array(chosen))).sort_by("ts")
    sample: list[dict[str, Any]] = []
    taken: dict[str, int] = {}
    for row in picked.to_pylist():
        if taken.get(row["account_id"], 0) < per_account:
            taken[row["account_id"]] = taken.get(row["account_id"], 0) + 1
            sample.append(row)
    return sample


def _send(base_url: str, secret: str, call: dict[str, Any]) -> int:
    """One replayed call through the gateway with the real OpenAI SDK; returns the HTTP status."""
    import openai

    client = openai.OpenAI(
        base_url=base_url,
        api_key=secret,
        max_retries=0,
        default_headers={"User-Agent": call["user_agent"] or "distillguard-demo"},
    )
    messages: list[dict[str, str]] = []
    if call["system_prompt"]:
        messages.append({"role": "system", "content": call["system_prompt"]})
    messages.append({"role": "user", "content": call["prompt"]})
    try:
        client.chat.completions.create(
            model=call["model"] or "atlas-mini",
            messages=messages,  # type: ignore[arg-type]
            max_tokens=64,
        )
        return 200
    except openai.APIStatusError as exc:
        return exc.status_code
    finally:
        client.close()


def stage_gateway(paths: DemoPaths, accounts: int = 30, per_account: int = 10) -> None:
    """Replay a sample of the simulated traffic through a real gateway and load its call log."""
    from concurrent.futures import ThreadPoolExecutor

    from distillguard.processes import Server, free_port
    from guard.state import open_store
    from ingest.loader import ingest_spool

    _say(
        "3. replaying ring traffic through a real gateway (OpenAI SDK -> gateway -> mock upstream)"
    )
    paths.logs.mkdir(exist_ok=True)
    sample = _replay_sample(paths, accounts, per_account)
    store = open_store(paths.state)
    secrets = {a: store.create_key(a)[1] for a in sorted({c["account_id"] for c in sample})}
    store.close()
    upstream_port, gateway_port = free_port(), free_port()
    upstream = Server(
        ["mock-upstream", "--latency-ms", "5", "--tokens-per-second", "0"],
        upstream_port,
        paths.logs / "mock-upstream.log",
    )
    gateway = Server(
        [
            "gateway",
            "--upstream",
            f"http://127.0.0.1:{upstream_port}",
            "--state",
            str(paths.state),
            "--spool",
            str(paths.spool),
        ],
        gateway_port,
        paths.logs / "gateway.log",
        env={"UPSTREAM_API_KEY": "demo-upstream-key"},
    )
    with upstream, gateway:
        base = f"{gateway.url}/v1"
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda c: _send(base, secrets[c["account_id"]], c), sample))
    ok = sum(1 for s in statuses if s == 200)
    typer.echo(
        f"   {len(secrets)} keys created; {len(sample)} calls sent, {ok} answered 200, "
        f"{len(sample) - ok} refused or failed"
    )
    with Warehouse.open(paths.db) as wh:
        reports = ingest_spool(wh, paths.spool)
        loaded = sum(r.rows_loaded for r in reports)
        typer.echo(
            f"   spool: {len(reports)} segment(s), {loaded} call records loaded "
            f"(one per call sent: {'yes' if loaded == len(sample) else 'NO'})"
        )


def stage_summary(paths: DemoPaths) -> None:
    """What arrived: volume, time span and endpoints."""
    _say("4. what the warehouse holds")
    with Warehouse.open(paths.db, read_only=True) as wh:
        row = wh.fetchone(
            "SELECT count(*), count(DISTINCT account_id), min(ts), max(ts) FROM calls"
        )
        assert row is not None
        calls, accounts, first, last = row
        typer.echo(
            f"   {calls:,} calls from {accounts:,} accounts, {first:%Y-%m-%d} .. {last:%Y-%m-%d}"
        )
        for endpoint, n in wh.fetchall(
            "SELECT endpoint, count(*) AS n FROM calls GROUP BY ALL ORDER BY n DESC LIMIT 5"
        ):
            typer.echo(f"   {n:>9,}  {endpoint}")


def stage_detect(paths: DemoPaths) -> None:
    """Run every detector, then show the flagged rings with their top evidence and the scores."""
    from detectors.evaluate import evaluate
    from detectors.pipeline import run_detection
    from detectors.results import ring_list

    _say("5. detecting extraction rings (features, embeddings, clusters, account graph)")
    with Warehouse.open(paths.db) as wh:
        summary = run_detection(wh, on_stage=lambda name: typer.echo(f"   .. {name}"))
        typer.echo(
            f"   {summary.n_calls:,} calls, {summary.n_accounts:,} accounts, "
            f"{summary.n_embedded:,} prompts embedded on {summary.device}, "
            f"{summary.n_rings:,} candidate rings, {summary.n_flagged_rings} flagged, "
            f"{summary.n_flagged:,} accounts flagged ({sum(summary.timings.values()):.0f} s)"
        )
        for ring in [r for r in ring_list(wh) if r["flagged"]][:5]:
            signals = ring["evidence"]["signals"]
            top = sorted(signals.items(), key=lambda kv: -kv[1]["contribution"])[:3]
            typer.secho(
                f"   {ring['ring_id']}: {ring['size']} accounts, score {ring['score']:.2f}",
                bold=True,
            )
            typer.echo(
                "      top evidence: "
                + ", ".join(f"{n} {s['value']:.2f} (+{s['contribution']:.2f})" for n, s in top)
            )
            templates = ring["evidence"].get("top_templates") or []
            if templates and templates[0].get("label"):
                typer.echo(f"      top template: {templates[0]['label'][:100]}")
            links = ring["evidence"].get("link_kinds") or {}
            if links:
                shared = sorted(links.items(), key=lambda kv: -kv[1])[:4]
                typer.echo("      linked by: " + ", ".join(f"{k} {w:.0f}" for k, w in shared))
        result = evaluate(wh, paths.sim / "labels.parquet")
    for name, key in (("full system", "system"), ("PRADA baseline", "baseline")):
        s = result[key]
        typer.echo(
            f"   {name:<15} precision {s['precision']:.3f}  recall {s['recall']:.3f}  "
            f"F1 {s['f1']:.3f}  (against the simulator's labels)"
        )


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path(
        "demo-out"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Simulation seed.")] = 7,
    scale: Annotated[
        float, typer.Option("--scale", help="Population size relative to the default.")
    ] = 1.0,
    corpus: Annotated[
        Path | None,
        typer.Option(
            "--corpus",
            help="Folder of real public prompt sets (for example ../shared/data/prompts).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="End by running the review console.")
    ] = True,
    port: Annotated[int, typer.Option("--port", help="Port for the review console.")] = 8800,
) -> None:
    """Run the whole pipeline on the embedded defaults, ending with the review console.

    Simulate traffic, ingest it, replay a sample through a real gateway, load its call log, detect
    rings and print them with their evidence, then leave `serve` running with a demo sign-in.
    """
    paths = DemoPaths(out)
    if paths.root.exists():
        shutil.rmtree(paths.root)
    paths.root.mkdir(parents=True)
    stage_simulate(paths, seed, scale, corpus)
    stage_ingest(paths)
    stage_gateway(paths)
    stage_summary(paths)
    stage_detect(paths)
    if serve:
        from dashboards.demo import stage_console

        _say("6. the review console (Ctrl-C to stop)")
        stage_console(paths.db, paths.root, paths.state, port=port)


def register(app: typer.Typer) -> None:
    """Add ``distillguard demo``."""
    app.command("demo")(demo)
