"""Detection speed, memory and quality on simulated populations.

    .venv/bin/python benchmarks/detect.py                    # the default simulation (~100k calls)
    .venv/bin/python benchmarks/detect.py --scale 1 --scale 10   # and ~1M calls
    .venv/bin/python benchmarks/detect.py --device cuda --scale 50   # a GPU machine, ~5M calls
    .venv/bin/python benchmarks/detect.py --model models/minilm-l2-distilled  # distilled embedder
    .venv/bin/python benchmarks/detect.py --precision bfloat16   # a CPU with native bfloat16

Each scale runs in a child process: simulate (seeded; the real prompt sets when ``--corpus``
exists), ingest into a fresh warehouse, one full ``run_detection``, then ``evaluate`` against the
labels. Its peak RSS comes from ``os.wait4``. Printed per scale: calls, wall time per stage, peak
memory, precision/recall/F1 of the full system and of the PRADA baseline in the same run, and the
measured embedding throughput with what embedding every distinct prompt would have cost (the naive
approach) as a ratio to the whole run. Growth: time and memory ratios against the first scale.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "prompts"

CHILD = """
import json, sys, time
from pathlib import Path
from ingest.simulator import SimulationConfig, simulate, write
from ingest.loader import ingest_file
from ingest.warehouse import Warehouse
from detectors.pipeline import run_detection
from detectors.evaluate import evaluate
from detectors.embeddings import load_embedder
from detectors.clusters import prompt_texts

scale, out, corpus, device, budget, sample, model, precision = sys.argv[1:9]
model_path = Path(model) if model else None
out = Path(out)
start = time.perf_counter()
config = SimulationConfig(seed=0).scaled(float(scale))
write(simulate(config, corpus=Path(corpus) if corpus else None), out)
simulated = time.perf_counter() - start
db = out / "w.duckdb"
with Warehouse.open(db) as wh:
    start = time.perf_counter()
    ingest_file(wh, out / "accounts.parquet", "accounts")
    ingest_file(wh, out / "calls.parquet", "calls")
    ingested = time.perf_counter() - start
    start = time.perf_counter()
    summary = run_detection(
        wh,
        device=device,
        embed_budget=None if budget == "" else int(budget),
        model_path=model_path,
        precision=precision,
    )
    detected = time.perf_counter() - start
    result = evaluate(wh, out / "labels.parquet")
    distinct = wh.scalar("SELECT count(DISTINCT md5(prompt)) FROM calls")
    hashes = [r[0] for r in wh.fetchall(
        "SELECT DISTINCT md5(prompt) AS h FROM calls ORDER BY h LIMIT $n", {"n": int(sample)})]
    texts = list(prompt_texts(wh, hashes).values())
embedder = load_embedder(
    model_path, summary.device, batch_size=128, max_seq_length=128, precision=summary.precision
)
embedder.encode(texts[:32])
start = time.perf_counter()
embedder.encode(texts)
throughput = len(texts) / (time.perf_counter() - start)
print(json.dumps({
    "scale": float(scale), "calls": summary.n_calls, "accounts": summary.n_accounts,
    "distinct_prompts": distinct, "simulate_s": simulated, "ingest_s": ingested,
    "detect_s": detected, "timings": summary.timings, "embedded": summary.n_embedded,
    "device": summary.device, "precision": summary.precision, "throughput": throughput,
    "system": result["system"], "baseline": result["baseline"],
    "rings": len(result["rings"]), "flagged": summary.n_flagged,
}))
"""


def run_scale(scale: float, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="detect-bench-") as scratch:
        corpus = str(args.corpus) if args.corpus and Path(args.corpus).is_dir() else ""
        budget = "" if args.embed_budget is None else str(args.embed_budget)
        argv = [sys.executable, "-c", CHILD, str(scale), scratch, corpus, args.device, budget]
        argv += [str(args.throughput_sample), str(args.model or ""), args.precision]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        out = proc.stdout.read().decode() if proc.stdout else ""
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"scale {scale} failed:\n{err[-4000:]}")
        figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        figures["peak_rss_mb"] = usage.ru_maxrss / 1024
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, action="append", help="simulation scale (repeat)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="the embedder's number format (auto: float16 on CUDA, float32 on the CPU)",
    )
    parser.add_argument("--embed-budget", type=int, default=None, help="default: the policy's")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--throughput-sample", type=int, default=1024)
    parser.add_argument(
        "--model", type=Path, default=None, help="a local sentence-transformers model directory"
    )
    args = parser.parse_args()
    scales = args.scale or [1.0]
    results = [run_scale(s, args) for s in scales]
    base = results[0]
    print(f"corpus: {args.corpus if args.corpus and args.corpus.is_dir() else 'built-in'}")
    print(f"embedder: {args.model or 'the bundled all-MiniLM-L6-v2'}")
    for r in results:
        naive = r["distinct_prompts"] / r["throughput"]
        print(
            f"\nscale {r['scale']:g}: {r['calls']:,} calls, {r['accounts']:,} accounts, "
            f"{r['distinct_prompts']:,} distinct prompts ({r['device']}, {r['precision']})"
        )
        print(
            f"  simulate {r['simulate_s']:.1f}s, ingest {r['ingest_s']:.1f}s, "
            f"detect {r['detect_s']:.1f}s, peak RSS {r['peak_rss_mb']:.0f} MB"
        )
        print("  stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in r["timings"].items()))
        print(
            f"  embedding: {r['embedded']:,} prompts embedded this run; throughput "
            f"{r['throughput']:.0f} prompts/s; embedding every distinct prompt would take "
            f"{naive:.0f}s = {naive / r['detect_s']:.1f}x this whole run"
        )
        for name in ("system", "baseline"):
            s = r[name]
            label = "full system " if name == "system" else "PRADA alone"
            print(
                f"  {label}: precision {s['precision']:.3f} recall {s['recall']:.3f} "
                f"F1 {s['f1']:.3f} (TP {s['tp']}, FP {s['fp']}, FN {s['fn']})"
            )
        if r is not base:
            print(
                f"  growth vs scale {base['scale']:g}: calls x{r['calls'] / base['calls']:.1f}, "
                f"detect time x{r['detect_s'] / base['detect_s']:.1f}, "
                f"peak memory x{r['peak_rss_mb'] / base['peak_rss_mb']:.1f}"
            )
    target = 300.0
    verdict = "meets" if base["detect_s"] < target else "misses"
    print(
        f"\nfull run at scale {base['scale']:g}: {base['detect_s']:.0f}s "
        f"({verdict} the 5-minute target)"
    )


if __name__ == "__main__":
    main()
