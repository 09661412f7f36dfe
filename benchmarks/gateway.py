"""Benchmark: latency the gateway adds over calling the model API directly, and the highest rate it
sustains, against LiteLLM proxy on the same mock upstream in the same run.

    .venv/bin/python benchmarks/gateway.py [--quick] [--skip-litellm]

Processes: the mock upstream (``distillguard mock-upstream --latency-ms 50``); the gateway (2
workers, durable logging); LiteLLM proxy (its default single worker, no database, installed on
first use into ``~/.cache/distillguard-bench/litellm``); the load generator
``benchmarks/tools/loadgen.py``, open-loop with evenly spaced arrivals (the wrk2 / vegeta model: a
slow answer never holds back the next request; see its docstring for why not ``hey -q``, whose
workers fire in synchronised bursts). Added latency: a percentile through the proxy minus the
same percentile calling the mock directly, at the same rate, measured just before it. Records
lost: calls the gateway answered 200 minus the records in its closed segments once it has
stopped. The fsync latency of the spool's disk is printed too: durable logging cannot answer
faster than one fsync.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from distillguard.processes import Server, free_port

LOADGEN = Path(__file__).parent / "tools" / "loadgen.py"
LITELLM_VENV = Path.home() / ".cache" / "distillguard-bench" / "litellm"
LATENCY_MS = 50
BUDGET_MS = 20.0


@dataclass
class Run:
    """One load step: what was offered and what came back."""

    target: str
    rate: int
    stream: bool
    sent: int
    ok: int
    p50_ms: float
    p99_ms: float
    achieved: float

    @property
    def healthy(self) -> bool:
        return self.ok >= 0.99 * self.sent and self.achieved >= 0.9 * self.rate


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load(
    url: str, headers: dict[str, str], body: Path, rate: int, seconds: float
) -> tuple[list[float], int, int, float]:
    """Offer ``rate`` requests/s for ``seconds``: latencies (ms), sent, ok, achieved rate."""
    args = [sys.executable, str(LOADGEN), url, "--rate", str(rate), "--seconds", str(seconds)]
    args += ["--body", str(body)]
    for name, value in headers.items():
        args += ["--header", f"{name}: {value}"]
    done = subprocess.run(args, capture_output=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr.decode()[-2000:]}")
    result = orjson.loads(done.stdout)
    return result["latencies_ms"], max(result["sent"], 1), result["ok"], result["achieved"]


def measure(
    target: str,
    url: str,
    headers: dict[str, str],
    body: Path,
    rate: int,
    seconds: float,
    stream: bool,
) -> Run:
    latencies, sent, ok, achieved = load(url, headers, body, rate, seconds)
    run = Run(
        target,
        rate,
        stream,
        sent,
        ok,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        achieved,
    )
    kind = "stream" if stream else "plain "
    print(
        f"  {target:8} {kind} {rate:5}/s  ok {ok}/{sent}  p50 {run.p50_ms:8.2f} ms  "
        f"p99 {run.p99_ms:8.2f} ms  achieved {achieved:7.1f}/s",
        flush=True,
    )
    return run


def litellm_command() -> Path | None:
    """The ``litellm`` executable in its own virtualenv, installed on first use."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    print("installing litellm[proxy] into", LITELLM_VENV, "(about a minute)", flush=True)
    LITELLM_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, "litellm[proxy]"], check=False, timeout=600)
    return exe if done.returncode == 0 and exe.exists() else None


def start_litellm(work: Path, mock_url: str) -> subprocess.Popen[bytes] | None:
    exe = litellm_command()
    if exe is None:
        print("LiteLLM could not be installed: its column stays empty", flush=True)
        return None
    config = work / "litellm.yaml"
    params = {"model": "openai/mock-1", "api_base": mock_url + "/v1", "api_key": "x"}
    model = {"model_name": "mock-1", "litellm_params": params}
    config.write_text(
        orjson.dumps({"model_list": [model], "litellm_settings": {"telemetry": False}}).decode()
    )
    return None if not config.exists() else _litellm_process(exe, config, work)


LITELLM_PORT = free_port()


def _litellm_process(exe: Path, config: Path, work: Path) -> subprocess.Popen[bytes] | None:
    env = {
        **os.environ,
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
        "LITELLM_LOG": "ERROR",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch from GitHub at start-up
    }
    env.pop("DATABASE_URL", None)
    with open(work / "litellm.log", "ab") as log:
        proc = subprocess.Popen(
            [
                exe,
                "--config",
                config,
                "--port",
                str(LITELLM_PORT),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            r = httpx.post(
                f"http://127.0.0.1:{LITELLM_PORT}/v1/chat/completions", timeout=5,
                json={"model": "mock-1", "messages": [{"role": "user", "content": "warm"}]},
            )  # fmt: skip
            if r.status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    print("LiteLLM did not start:", (work / "litellm.log").read_text()[-1500:], flush=True)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return None


def highest_rate(
    name: str,
    url: str,
    headers: dict[str, str],
    direct: str,
    body: Path,
    rates: list[int],
    seconds: float,
) -> tuple[int, list[tuple[int, float, float]]]:
    """The highest offered rate whose p99 added latency stays under the budget, error-free;
    and every step tried as (rate, added p50, added p99)."""
    best, trail = 0, []
    for rate in rates:
        base = measure("direct", direct, {}, body, rate, seconds, False)
        run = measure(name, url, headers, body, rate, seconds, False)
        added = run.p99_ms - base.p99_ms
        trail.append((rate, run.p50_ms - base.p50_ms, added))
        if not base.healthy:
            print(f"  the direct path itself saturates at {rate}/s: stopping here", flush=True)
            break
        if not run.healthy or added >= BUDGET_MS:
            break
        best = rate
    return best, trail


def fsync_latency(folder: Path, count: int = 200) -> tuple[float, float]:
    """p50 and p99 (ms) of appending 512 bytes and ``fdatasync`` in ``folder``."""
    times = []
    fd = os.open(folder / "fsync-probe", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(count):
            started = time.perf_counter()
            os.write(fd, b"x" * 512)
            os.fdatasync(fd)
            times.append((time.perf_counter() - started) * 1000.0)
            time.sleep(0.002)
    finally:
        os.close(fd)
        (folder / "fsync-probe").unlink()
    return percentile(times, 0.5), percentile(times, 0.99)


def _print_fsync(folder: Path) -> None:
    p50, p99 = fsync_latency(folder)
    print(f"fsync on the spool's disk: p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)


def _records(spool: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in (spool / "segments").glob("*.parquet"))


def _metric(text: str, prefix: str, needle: str = "") -> float:
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(prefix) and needle in line
    )


def _cell(pair: tuple[float, float] | None) -> str:
    if pair is None:
        return "not run"
    if pair[0] == float("inf"):
        return "saturated"
    return f"{pair[0]:.2f} / {pair[1]:.2f}"


def _ratio(ours: tuple[float, float], theirs: tuple[float, float] | None) -> str:
    if theirs is None:
        return "n/a"
    if theirs[0] == float("inf"):
        return "LiteLLM saturated"
    return " / ".join(
        f"{t / o:.0f}x" if o > 0 else "n/a" for o, t in zip(ours, theirs, strict=True)
    )


def at_200(
    name: str, url: str, headers: dict[str, str], direct: str, bodies: list[tuple[bool, Path]],
    seconds: float, results: dict[tuple[str, bool], tuple[float, float]], repeats: int = 1,
) -> None:  # fmt: skip
    """Added p50/p99 at 200 requests/s for each body; ``inf`` when the target cannot keep up.

    With ``repeats``, direct and proxied steps alternate that many times and the median of the
    per-pair differences is kept: the machine's drift between two 10-second windows (a few tenths
    of a millisecond here) is as large as the gateway's own cost."""
    for stream, body in bodies:
        pairs = []
        for _ in range(repeats):
            base = measure("direct", direct, {}, body, 200, seconds, stream)
            run = measure(name, url, headers, body, 200, seconds, stream)
            if not run.healthy:
                pairs = [(float("inf"), float("inf"))]
                break
            pairs.append((run.p50_ms - base.p50_ms, run.p99_ms - base.p99_ms))
        results[(name, stream)] = (
            statistics.median(p for p, _ in pairs),
            statistics.median(q for _, q in pairs),
        )


def run_gateway(work: Path, mock_url: str, durability: str) -> Server:
    limits = {
        f"GUARD_{name}": "1000000000"
        for name in ("RPM_PER_KEY", "RPM_PER_ACCOUNT", "TPM_PER_KEY", "TPM_PER_ACCOUNT")
    }
    args = ["gateway", "--upstream", mock_url, "--workers", "2", "--durability", durability]
    args += ["--spool", str(work / f"spool-{durability}"), "--state", str(work / "state.json")]
    return Server(args, free_port(), work / f"gateway-{durability}.log", limits).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Shorter steps (a smoke run).")
    parser.add_argument("--skip-litellm", action="store_true", help="Only the gateway.")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 10.0
    sweep = 2.0 if args.quick else 5.0
    work = Path(tempfile.mkdtemp(prefix="dg-bench-"))
    from guard.state import FileStateStore

    key = FileStateStore(work / "state.json").create_key("bench")[1]
    plain, streamed = work / "plain.json", work / "stream.json"
    question = {"role": "user", "content": "Explain step by step: 17*23?"}
    plain.write_bytes(orjson.dumps({"model": "mock-1", "messages": [question]}))
    streamed.write_bytes(orjson.dumps({"model": "mock-1", "messages": [question], "stream": True}))
    bodies = [(False, plain), (True, streamed)]
    mock_args = ["mock-upstream", "--latency-ms", str(LATENCY_MS)]
    mock = Server(mock_args, free_port(), work / "mock.log").start()
    direct = mock.url + "/v1/chat/completions"
    auth = {"Authorization": f"Bearer {key}"}
    results: dict[tuple[str, bool], tuple[float, float]] = {}
    best = lite_best = 0
    trails: dict[str, list[tuple[int, float, float]]] = {}
    litellm = None
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    _print_fsync(work)
    try:
        print(f"== 200 requests/s, {seconds:.0f} s a step, mock upstream {LATENCY_MS} ms")
        gateway = run_gateway(work, mock.url, "durable")
        ours = gateway.url + "/v1/chat/completions"
        try:
            at_200("gateway", ours, auth, direct, bodies, seconds, results, repeats=3)
            print(f"== highest rate with p99 added < {BUDGET_MS:.0f} ms, {sweep:.0f} s a step")
            rates = [50, 100, 200, 400, 600, 800, 1000, 1500, 2000]
            best, trails["gateway"] = highest_rate(
                "gateway", ours, auth, direct, plain, rates, sweep
            )
        finally:
            metrics = httpx.get(gateway.url + "/metrics").text
            gateway.stop()
        print("== the same gateway with --durability relaxed (no fsync wait), for comparison")
        relaxed = run_gateway(work, mock.url, "relaxed")
        try:
            at_200("relaxed", relaxed.url + "/v1/chat/completions", auth, direct, bodies[:1],
                   seconds, results, repeats=3)  # fmt: skip
        finally:
            relaxed.stop()
        litellm = None if args.skip_litellm else start_litellm(work, mock.url)
        if litellm is not None:
            theirs = f"http://127.0.0.1:{LITELLM_PORT}/v1/chat/completions"
            at_200("litellm", theirs, {}, direct, bodies, seconds, results)
            rates = [5, 10, 25, 50, 100, 200]
            lite_best, trails["litellm"] = highest_rate(
                "litellm", theirs, {}, direct, plain, rates, sweep
            )
    finally:
        print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
        _print_fsync(work)
        if litellm is not None:
            os.killpg(litellm.pid, signal.SIGTERM)
            litellm.wait(30)
        mock.stop()
    answered = int(_metric(metrics, "guard_requests_total", 'status="200"'))
    lost_metric = int(_metric(metrics, "guard_records_lost_total"))
    recorded = _records(work / "spool-durable")
    print()
    print("distillguard at 200 req/s: the median of 3 alternating direct/gateway pairs")
    print("| added over calling the mock directly, ms | distillguard | LiteLLM | LiteLLM / ours |")
    print("|---|---|---|---|")
    for stream in (False, True):
        ours_pair = results[("gateway", stream)]
        lite_pair = results.get(("litellm", stream))
        label = "streaming" if stream else "non-streaming"
        print(
            f"| p50 / p99 at 200 req/s, {label} | {_cell(ours_pair)} | {_cell(lite_pair)} "
            f"| {_ratio(ours_pair, lite_pair)} |"
        )
    relaxed_pair = results.get(("relaxed", False))
    print(f"| same, non-streaming, --durability relaxed | {_cell(relaxed_pair)} | | |")
    lowest = {"gateway": 50, "litellm": 5}
    shown = {
        n: f"{b}" if b else f"< {lowest[n]}" for n, b in (("gateway", best), ("litellm", lite_best))
    }
    if litellm is None:
        shown["litellm"] = "not run"
    if best and lite_best:
        rate_ratio = f"{best / lite_best:.1f}x"
    elif best and litellm is not None:
        rate_ratio = f"> {best / lowest['litellm']:.0f}x"
    else:
        rate_ratio = "n/a"
    label = f"highest req/s with p99 added < {BUDGET_MS:.0f} ms"
    print(f"| {label} | {shown['gateway']} | {shown['litellm']} | {rate_ratio} |")
    print(
        f"| records lost (200s answered {answered}, records {recorded}) "
        f"| {max(0, answered - recorded)} (metric: {lost_metric}) | not measured | |"
    )
    print()
    for name, trail in trails.items():
        steps = ", ".join(f"{r}/s {p50:.1f} / {p99:.1f}" for r, p50, p99 in trail)
        print(f"{name} rate sweep, added p50 / p99 ms: {steps}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
