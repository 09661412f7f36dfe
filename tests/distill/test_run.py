"""``distillguard distill run``: the gate first, obligations, training, resume, provenance."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from distill.exceptions import (
    CheckpointError,
    DataError,
    DeviceError,
    JobInterrupted,
    JobSpecError,
    ModelFolderError,
)
from distill.job import run_job
from distill.provenance import PROVENANCE_FILE
from tests.distill import tiny
from tests.distill.cards import CARDS

Workdir = Callable[..., Path]
ROOT = Path(__file__).resolve().parents[2]

# Runs the CLI in a fresh interpreter and reports what it opened and imported.
_PROBE = """
import json, sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
from distillguard.cli import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
loaded = [m for m in ("distill.models", "distill.loop", "transformers.modeling_utils")
          if m in sys.modules]
print(json.dumps({"code": code, "opened": opened, "loaded": loaded}))
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=240,
        check=False,
    )


def _card(name: str) -> str:
    return f"---\n{yaml.safe_dump(CARDS[name], sort_keys=False)}---\n\n# {name}\n"


def test_deny_stops_before_any_model_file_is_opened(workdir: Workdir) -> None:
    folder = workdir("llama-teacher", "llama-student", card=_card("llama3"))
    job = tiny.job(folder, method="logit", use="commercial")
    done = _cli("distill", "run", str(job))
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 2, done.stderr
    assert "the licence gate denied the job; nothing was loaded" in done.stderr
    assert "LicenseRef-llama-3-community 1.b.v" in done.stderr
    touched = [p for p in report["opened"] if p.startswith(str(folder))]
    assert touched and not [p for p in touched if p.endswith((".safetensors", ".bin"))]
    assert not [p for p in touched if "tokenizer" in p or "config.json" in p]
    assert report["loaded"] == []
    assert not (folder / "out").exists()


def test_llama_naming_obligation_refuses_before_training(workdir: Workdir) -> None:
    folder = workdir("llama-teacher", "llama-student", card=_card("llama3.1"))
    (folder / "student" / "README.md").write_text(_card("llama3.1"), encoding="utf-8")
    job = tiny.job(folder, method="logit", use="commercial", student_name="acme-small")
    done = _cli("distill", "run", str(job))
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 3, done.stderr
    assert (
        "LicenseRef-llama-3.1-community 1.b.i requires the student's name to start with "
        '"Llama"' in done.stderr
    )
    assert 'student_name is "acme-small"' in done.stderr
    assert report["loaded"] == [] and not (folder / "out").exists()


def _cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("role", "damage", "expected"),
    [
        ("student", lambda f: (f / "config.json").write_text("{not json"), r"config.json: .*JSON"),
        ("teacher", lambda f: (f / "config.json").unlink(), r"no config.json"),
        ("student", lambda f: (f / "config.json").write_text("{}"), r"config.json: .*model_type"),
        ("teacher", lambda f: (f / "tokenizer.json").write_text("{oops"), r"tokenizer.json: not "),
        ("student", lambda f: (f / "model.safetensors").unlink(), r"no weights \(model.safet"),
        ("teacher", lambda f: _cut_in_half(f / "model.safetensors"), r"unreadable safetensors"),
    ],
)
def test_a_broken_model_folder_is_named_before_anything_is_written(
    workdir: Workdir, role: str, damage: Callable[[Path], None], expected: str
) -> None:
    folder = workdir("bert-teacher", "bert-student")
    damage(folder / role)
    named = f"^{role} {re.escape(str(folder / role))}.*{expected}"
    with pytest.raises(ModelFolderError, match=named):
        run_job(tiny.job(folder), device="cpu")
    assert not (folder / "out").exists()


def test_a_student_config_file_that_is_not_a_json_object_is_named(workdir: Workdir) -> None:
    folder = workdir("bert-teacher", "bert-student")
    (folder / "student.json").write_text("[1, 2]")
    with pytest.raises(ModelFolderError, match=r"student .*student.json: expected a JSON object"):
        run_job(tiny.job(folder, student="student.json"), device="cpu")
    done = _cli("distill", "run", str(folder / "job.yaml"))
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 1 and "Traceback" not in done.stderr
    assert "student.json: expected a JSON object" in done.stderr


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_hidden_state_job_writes_student_provenance_card_and_licence(workdir: Workdir) -> None:
    folder = workdir("bert-teacher", "bert-student")
    job = tiny.job(
        folder,
        hyperparameters={
            "batch_size": 4,
            "epochs": 2,
            "learning_rate": 1e-3,
            "layer_map": {1: 2, 2: 4},
            "eval_fraction": 0.25,
        },
    )
    result = run_job(job, device="cpu")
    out = folder / "out"
    record = json.loads((out / PROVENANCE_FILE).read_text())
    assert result.provenance == record

    assert record["teacher"]["model"] == str(folder / "teacher")
    weights = record["teacher"]["files_sha256"]["model.safetensors"]
    assert weights == _sha(folder / "teacher" / "model.safetensors")
    assert record["teacher"]["licences"] == ["Apache-2.0"]
    assert record["student"]["base_licences"] == ["Apache-2.0"]
    assert record["gate"]["decision"] == "allow_with_obligations"
    assert {"licence", "clause", "quote", "outcome"} <= set(record["gate"]["reasons"][0])
    assert all(o["status"] == "met" for o in record["obligations"])
    assert {o["kind"] for o in record["obligations"]} >= {"licence_copy", "notice"}
    [data] = record["data"]
    assert data["license"] == "apache-2.0" and data["examples"] == 24
    assert data["sha256"] == _sha(folder / "prompts.jsonl")
    assert record["method"] == "hidden_state"
    assert record["hyperparameters"]["layer_map"] == {"1": 2, "2": 4}
    assert record["training"]["steps"] == record["training"]["total_steps"] > 0
    assert record["training"]["autocast"] == "fp32"  # precision auto: fp32 on a CPU
    assert 0 < record["training"]["eval_examples"] < 24
    assert -1 <= record["metrics"]["eval_cosine_mean"] <= 1
    assert {"python", "torch", "transformers"} <= set(record["software"])

    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\n")
    assert "## Distillation provenance" in card and "Apache-2.0 4(a)" in card
    assert (out / "LICENSES" / "Apache-2.0.txt").read_text() == tiny.APACHE_FINGERPRINTS
    assert "Apache-2.0 (4(d))" in (out / "NOTICE").read_text()
    assert (out / "projection.pt").exists()  # widths 16 -> 32 needed a learned projection
    steps = [
        json.loads(line)["step"]
        for line in (out / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, record["training"]["steps"] + 1))
    assert not (out / "run" / "checkpoints").exists()

    from transformers import AutoModel

    student = AutoModel.from_pretrained(str(out))
    assert student.config.hidden_size == 16 and student.config.num_hidden_layers == 2


def test_student_card_lets_a_later_gate_see_its_licence(workdir: Workdir) -> None:
    folder = workdir("bert-teacher", "bert-student")
    run_job(tiny.job(folder, hyperparameters={"batch_size": 8, "max_steps": 1}), device="cpu")
    from distill.spec import load_job_spec
    from policies.gate import check

    again = tiny.job(folder, teacher="out", output_dir="out2")
    decision = check(load_job_spec(again).model)
    assert decision.licences["teacher"] == ["Apache-2.0"]


def test_sentence_embedding_student_from_teacher_layers_loads_in_sentence_transformers(
    workdir: Workdir,
) -> None:
    folder = workdir("bert-teacher", "bert-teacher")
    tiny.sentence_files(folder / "student")
    hp = {
        "student_layers": [0, 3],
        "embedding_loss": "cosine",
        "batch_size": 8,
        "epochs": 3,
        "learning_rate": 5e-3,
        "eval_fraction": 0.0,
        "max_length": 24,
        "dropout": 0.0,
        "group_by_length": True,
        "layer_map": {2: 4},
        "hidden_loss": "cosine",
    }
    record = run_job(tiny.job(folder, hyperparameters=hp), device="cpu").provenance
    assert record["metrics"]["eval_cosine_mean"] > 0.5
    assert record["hyperparameters"]["dropout"] == 0.0

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder / "out"), device="cpu")
    assert model.encode(["a prompt"]).shape == (1, 32)
    assert model[0].auto_model.config.num_hidden_layers == 2
    # trained on 24 tokens, so it encodes no more (the bundled settings say 256)
    assert model.max_seq_length == 24
    # dropout was off for training only: the saved config keeps the base model's
    assert model[0].auto_model.config.hidden_dropout_prob == 0.1
    metrics = (folder / "out/run/metrics.jsonl").read_text().splitlines()
    assert all("hidden_loss" in json.loads(line) for line in metrics)


def test_dropout_override_reaches_every_dropout_of_the_student(workdir: Workdir) -> None:
    import torch

    from distill.data import load_examples
    from distill.hidden_state_trainer import HiddenStateTrainer
    from distill.job import prepare
    from distill.trainer import JobContext

    folder = workdir("bert-teacher", "bert-student")
    job = prepare(tiny.job(folder, hyperparameters={"dropout": 0.0}))
    examples = load_examples(job.spec.data)
    ctx = JobContext(job.spec, examples, [], torch.device("cpu"), folder / "run")
    trainer = HiddenStateTrainer(ctx, job.config)  # type: ignore[arg-type]
    trainer.prepare()
    rates = {m.p for m in trainer.student.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.0}
    assert trainer.student.config.attention_probs_dropout_prob == 0.0


def test_records_mode_learns_from_whole_training_records_and_frozen_embeddings_stay(
    workdir: Workdir,
) -> None:
    import torch
    from transformers import AutoModel

    from distill.data import is_held_out, load_examples, split
    from distill.hidden_state_trainer import HiddenStateTrainer
    from distill.job import prepare
    from distill.trainer import JobContext

    folder = workdir("bert-teacher", "bert-student")
    records = [
        {"question": f"question {i} about tea", "answer": f"the answer to {i} is {i * 7} cups"}
        for i in range(40)
    ]
    (folder / "prompts.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    hp = {
        "train_texts": "records",
        "freeze_embeddings": True,
        "eval_fraction": 0.25,
        "epochs": 2,
        "batch_size": 8,
        "learning_rate": 5e-3,
    }
    job = prepare(tiny.job(folder, hyperparameters=hp))
    train, held = split(load_examples(job.spec.data), 0.25)
    assert train and held
    ctx = JobContext(job.spec, train, held, torch.device("cpu"), folder / "run")
    trainer = HiddenStateTrainer(ctx, job.config)  # type: ignore[arg-type]
    trainer.prepare()
    answers = {f"question {i} about tea": f"the answer to {i} is {i * 7} cups" for i in range(40)}
    expected = [t for e in train for t in (e.prompt, answers[e.prompt])]
    assert trainer.texts == expected  # no text of a held-out record
    assert trainer.student.embeddings.word_embeddings.weight.requires_grad is False

    record = run_job(tiny.job(folder, hyperparameters=hp), device="cpu").provenance
    assert record["metrics"]["eval_examples"] == len(held)
    assert record["metrics"]["train_texts"] == 2 * len(train)
    assert all(is_held_out(e.prompt, 0.25) for e in held)
    base = AutoModel.from_pretrained(str(folder / "student"))
    trained = AutoModel.from_pretrained(str(folder / "out"))
    for name, value in base.embeddings.state_dict().items():
        assert torch.equal(trained.embeddings.state_dict()[name], value), name
    assert not torch.equal(
        trained.encoder.layer[0].attention.self.query.weight,
        base.encoder.layer[0].attention.self.query.weight,
    )


def test_crops_are_runs_of_at_least_a_third_of_the_words() -> None:
    from types import SimpleNamespace

    import torch

    from distill.hidden_state_config import HiddenStateConfig
    from distill.hidden_state_trainer import HiddenStateTrainer

    torch.manual_seed(0)
    text = " ".join(f"w{i}" for i in range(30))
    owner = SimpleNamespace(config=HiddenStateConfig(crop_fraction=1.0))
    crops, changed = HiddenStateTrainer._crop(owner, [text] * 50 + ["too short"])  # type: ignore[arg-type]
    assert changed == [True] * 50 + [False] and crops[-1] == "too short"
    for crop in crops[:-1]:
        assert crop in text and len(crop.split()) >= 10
    assert len(set(crops)) > 10
    none = SimpleNamespace(config=HiddenStateConfig(crop_fraction=0.0))
    assert HiddenStateTrainer._crop(none, [text]) == ([text], [False])  # type: ignore[arg-type]


def test_word_substitution_swaps_words_for_training_words_and_keeps_spacing() -> None:
    from types import SimpleNamespace

    import torch

    from distill.hidden_state_config import HiddenStateConfig
    from distill.hidden_state_trainer import HiddenStateTrainer

    torch.manual_seed(0)
    text = "alpha beta gamma\n\ndelta  epsilon"
    pool = ["zeta zeta zeta eta"]  # zeta three times as likely as eta
    owner = SimpleNamespace(config=HiddenStateConfig(word_substitution=0.5), texts=pool)
    owner._words = HiddenStateTrainer._substitution_words(owner)  # type: ignore[arg-type]
    out, changed = HiddenStateTrainer._substitute(owner, [text] * 400 + [""])  # type: ignore[arg-type]
    assert out[-1] == "" and changed == [new != text for new in out[:-1]] + [False]
    assert 0 < changed.count(False) < 50  # a text keeps all five words with chance 1/32
    swapped: list[str] = []
    for new in out[:-1]:
        assert re.sub(r"\S+", "w", new) == "w w w\n\nw  w"  # spacing and line breaks kept
        swapped += [b for a, b in zip(text.split(), new.split(), strict=True) if a != b]
    assert 0.4 < len(swapped) / (400 * 5) < 0.6
    assert set(swapped) == {"zeta", "eta"}
    assert 2.5 < swapped.count("zeta") / swapped.count("eta") < 3.5
    none = SimpleNamespace(config=HiddenStateConfig(), _words=owner._words)
    assert HiddenStateTrainer._substitute(none, [text]) == ([text], [False])  # type: ignore[arg-type]


def test_vocabulary_substitution_draws_whole_words_of_the_tokenizer_alike() -> None:
    from types import SimpleNamespace

    import torch

    from distill.exceptions import DistillError
    from distill.hidden_state_config import HiddenStateConfig
    from distill.hidden_state_trainer import HiddenStateTrainer

    torch.manual_seed(0)
    tokenizer = tiny.minilm_tokenizer()
    config = HiddenStateConfig(word_substitution=0.5, substitution_words="vocabulary")
    owner = SimpleNamespace(config=config, tokenizer=tokenizer, texts=["zeta eta"])
    owner._words = HiddenStateTrainer._substitution_words(owner)  # type: ignore[arg-type]
    text = "alpha beta gamma\n\ndelta  epsilon"
    out, changed = HiddenStateTrainer._substitute(owner, [text] * 400)  # type: ignore[arg-type]
    swapped: list[str] = []
    for new in out:
        assert re.sub(r"\S+", "w", new) == "w w w\n\nw  w"
        swapped += [b for a, b in zip(text.split(), new.split(), strict=True) if a != b]
    assert 0.4 < len(swapped) / (400 * 5) < 0.6 and changed == [new != text for new in out]
    vocabulary = tokenizer.get_vocab()
    for word in swapped:  # a whole word: one token of letters, not a "##" piece or [UNK]
        assert word in vocabulary and word.isalpha() and len(word) > 1
        assert tokenizer(word, add_special_tokens=False)["input_ids"] == [vocabulary[word]]
    # ~22k words alike: a thousand draws are nearly all different, none weighted to the texts
    assert len(set(swapped)) > 0.9 * len(swapped) and swapped.count("zeta") < 3
    words, weights = owner._words
    assert len(words) > 20_000 and "##ing" not in words and "[CLS]" not in words
    assert torch.equal(weights, torch.ones(len(words)))

    mixed = SimpleNamespace(config=config, tokenizer=tiny.wordlevel(["what is 12 plus x34 b"]))
    assert HiddenStateTrainer._substitution_words(mixed)[0] == ["is", "plus", "what"]  # type: ignore[arg-type]
    letters = SimpleNamespace(config=config, tokenizer=tiny.wordlevel(["1 2 a b"]))
    with pytest.raises(DistillError, match="tokenizer has no whole words"):
        HiddenStateTrainer._substitution_words(letters)  # type: ignore[arg-type]


def test_source_balance_evens_out_sources_and_keeps_the_epoch_length() -> None:
    from collections import Counter
    from types import SimpleNamespace

    from distill.data import Example
    from distill.hidden_state_config import HiddenStateConfig
    from distill.hidden_state_trainer import HiddenStateTrainer, balance_sources

    pairs = [("big", f"big {i}") for i in range(900)] + [("small", f"small {i}") for i in range(40)]
    assert balance_sources(pairs, 0.0) == [t for _, t in pairs]
    half = balance_sources(pairs, 0.5)  # shares in proportion to sqrt(900) : sqrt(40)
    assert Counter(t.split()[0] for t in half) == {"big": 776, "small": 164}
    small = [t for t in half if t.startswith("small")]
    assert set(small) == {t for s, t in pairs if s == "small"}  # every small text, 4 times or 5
    assert sorted(Counter(small).values()) == [4] * 36 + [5] * 4
    assert len(set(half)) == 776 + 40  # the big source is cut, not repeated
    assert sorted(balance_sources(pairs[::-1], 0.5)) == sorted(half)  # not by file order
    even = Counter(t.split()[0] for t in balance_sources(pairs, 1.0))
    assert even == {"big": 470, "small": 470}

    train = [Example(t, source=s) for s, t in pairs]
    held = [Example("held out", source="small")]
    owner = SimpleNamespace(
        config=HiddenStateConfig(source_balance=1.0, train_texts="records"),
        ctx=SimpleNamespace(train=train, eval=held),
    )
    texts = HiddenStateTrainer._training_texts(owner)  # type: ignore[arg-type]
    assert Counter(t.split()[0] for t in texts) == {"big": 470, "small": 470}


@pytest.mark.parametrize(
    "extra",
    [{}, {"layer_map": {2: 4}, "cache_teacher": True, "substitution_words": "vocabulary"}],
    ids=["pooled", "cached-states-vocabulary"],
)
def test_stop_and_resume_finishes_like_an_uninterrupted_run(
    workdir: Workdir, tmp_path: Path, extra: dict[str, object]
) -> None:
    folder = workdir("bert-teacher", "bert-student")
    # crops and word substitutions draw from torch's RNG: the checkpoint's RNG state makes the
    # resumed run draw alike;
    # pruning is by importance on the training texts, so a resumed run prunes the same units
    hp = {
        "ffn_size": 24,
        "batch_size": 4,
        "epochs": 2,
        "checkpoint_every": 2,
        "eval_fraction": 0.0,
        "crop_fraction": 0.5,
        "word_substitution": 0.2,
    } | extra
    job = tiny.job(folder, hyperparameters=hp)
    done = _cli("distill", "run", str(job), "--device", "cpu", "--stop-after", "5")
    assert json.loads(done.stdout.strip().splitlines()[-1])["code"] == 130, done.stderr
    caches = {p: p.stat().st_mtime_ns for p in (folder / "out/run/cache").glob("*.pt")}
    assert len(caches) == 1  # the pooled targets, or the teacher's states
    assert "stopped after 5 of 12 steps" in done.stderr and "--resume" in done.stderr
    assert not (folder / "out" / PROVENANCE_FILE).exists()
    with pytest.raises(CheckpointError, match="pass --resume"):
        run_job(job, device="cpu")

    done = _cli("distill", "run", str(job), "--device", "cpu", "--resume")
    assert json.loads(done.stdout.strip().splitlines()[-1])["code"] == 0, done.stderr
    assert f"student: {folder / 'out'}  (hidden_state, 12 steps on cpu" in done.stdout
    assert "met licence_copy [Apache-2.0 4(a)]: copied" in done.stdout
    resumed = json.loads((folder / "out" / PROVENANCE_FILE).read_text())
    assert resumed["training"]["resumed_from"] == 5
    assert {p: p.stat().st_mtime_ns for p in caches} == caches  # reused, not computed again
    assert resumed["training"]["steps"] == resumed["training"]["total_steps"] == 12
    steps = [
        json.loads(line)["step"]
        for line in (folder / "out/run/metrics.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, 13))

    straight = tiny.job(folder, hyperparameters=hp, output_dir="straight")
    run_job(straight, device="cpu")
    tiny.assert_same_weights(folder / "out", folder / "straight")


def test_resume_without_checkpoint_and_finished_output_are_errors(workdir: Workdir) -> None:
    folder = workdir("bert-teacher", "bert-student")
    job = tiny.job(folder, hyperparameters={"max_steps": 1})
    with pytest.raises(CheckpointError, match="no checkpoint"):
        run_job(job, device="cpu", resume=True)
    run_job(job, device="cpu")
    with pytest.raises(Exception, match="already holds a finished student"):
        run_job(job, device="cpu")


@pytest.mark.parametrize(
    ("hyperparameters", "expected"),
    [
        ({"epochz": 2}, r"field 'hyperparameters.epochz': Extra inputs are not permitted"),
        ({"learning_rate": -1}, r"field 'hyperparameters.learning_rate'.*\(got -1\)"),
        ({"embedding_loss": "none"}, r"nothing to distil"),
        (
            {"embedding_loss": "none", "layer_map": {1: 1}, "pooled_head": "linear"},
            r"pooled_head is trained by the embedding loss",
        ),
        ({"substitution_words": "vocabulary"}, r"substitution_words needs word_substitution"),
        ({"hidden_loss": "l1", "layer_map": {1: 1}}, r"hidden_loss.*\(got 'l1'\)"),
        ({"precision": "fp16"}, r"field 'hyperparameters.precision'.*\(got 'fp16'\)"),
    ],
)
def test_bad_hyperparameters_name_the_field_and_value(
    workdir: Workdir, hyperparameters: dict[str, object], expected: str
) -> None:
    folder = workdir("bert-teacher", "bert-student")
    with pytest.raises(JobSpecError, match=expected):
        run_job(tiny.job(folder, hyperparameters=hyperparameters), device="cpu")
    assert not (folder / "out").exists()


def test_missing_data_file_and_stop_after_are_reported(workdir: Workdir) -> None:
    folder = workdir("bert-teacher", "bert-student")
    data = [{"path": "nowhere.jsonl", "license": "apache-2.0"}]
    with pytest.raises(DataError, match=r"nowhere.jsonl does not exist"):
        run_job(tiny.job(folder, data=data), device="cpu")
    with pytest.raises(JobInterrupted):
        run_job(tiny.job(folder, hyperparameters={"batch_size": 4}), device="cpu", stop_after=1)


def test_bf16_precision_trains_under_bf16_autocast_on_cpu_and_keeps_fp32_weights(
    workdir: Workdir,
) -> None:
    import torch
    from transformers import AutoModel

    folder, losses = workdir("bert-teacher", "bert-student"), {}
    for precision in ("fp32", "bf16"):
        hyperparameters = {"batch_size": 8, "max_steps": 2, "precision": precision}
        record = run_job(tiny.job(folder, hyperparameters=hyperparameters), device="cpu").provenance
        assert record["hyperparameters"]["precision"] == precision
        out = (folder / "out").rename(folder / f"out-{precision}")
        first = (out / "run" / "metrics.jsonl").read_text().splitlines()[0]
        losses[precision] = json.loads(first)["loss"]
        student = AutoModel.from_pretrained(str(out))
        assert {p.dtype for p in student.parameters()} == {torch.float32}
    assert record["training"]["autocast"] == "bf16"
    # the same first batch and weights: bf16 rounding moves the loss a little, and only a little
    assert losses["bf16"] != losses["fp32"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)


def test_fp16_steps_scale_the_loss_and_a_resume_restores_the_scale(
    workdir: Workdir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from distill import loop

    folder = workdir("bert-teacher", "bert-student")
    hp = {"batch_size": 4, "epochs": 2, "checkpoint_every": 2, "eval_fraction": 0.0}
    run_job(tiny.job(folder, hyperparameters=hp, output_dir="plain"), device="cpu")
    # the loop's view of the precision: fp16, as on a CUDA device without bf16 (the steps
    # themselves still run in fp32 here, so scaling must leave the updates as they were)
    monkeypatch.setattr(loop, "autocast_dtype", lambda device, precision: torch.float16)
    job = tiny.job(folder, hyperparameters=hp)
    with pytest.raises(JobInterrupted):
        run_job(job, device="cpu", stop_after=4)
    last = sorted((folder / "out" / "run" / "checkpoints").iterdir())[-1]
    state = torch.load(last, map_location="cpu", weights_only=False)
    assert state["scaler"]["scale"] == 2.0**16  # GradScaler's initial scale, not yet grown
    state["scaler"]["scale"] = 2.0**10
    torch.save(state, last)
    restored: list[float] = []
    load = torch.amp.GradScaler.load_state_dict

    def recording(self: torch.amp.GradScaler, body: dict[str, object]) -> None:
        restored.append(float(body["scale"]))  # type: ignore[arg-type]
        load(self, body)

    monkeypatch.setattr(torch.amp.GradScaler, "load_state_dict", recording)
    run_job(job, device="cpu", resume=True)
    assert restored == [2.0**10]
    tiny.assert_same_weights(folder / "out", folder / "plain")


def test_fused_adamw_is_the_default_and_updates_as_the_per_parameter_loop(
    workdir: Workdir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    built: list[object] = []
    adamw = torch.optim.AdamW

    def recording(*args: object, **kwargs: object) -> torch.optim.AdamW:
        built.append(kwargs.get("fused"))
        return adamw(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.optim, "AdamW", recording)
    folder = workdir("bert-teacher", "bert-student")
    hp: dict[str, object] = {"batch_size": 4, "max_steps": 4, "learning_rate": 1e-2}
    run_job(tiny.job(folder, hyperparameters=hp, output_dir="fused"), device="cpu")
    hp["optimizer"] = "adamw_torch"
    record = run_job(tiny.job(folder, hyperparameters=hp, output_dir="loop"), device="cpu")
    assert built == [True, False]
    assert record.provenance["hyperparameters"]["optimizer"] == "adamw_torch"
    tiny.assert_same_weights(folder / "fused", folder / "loop")
    with pytest.raises(JobSpecError, match=r"hyperparameters.optimizer.*\(got 'sgd'\)"):
        run_job(tiny.job(folder, hyperparameters={"optimizer": "sgd"}), device="cpu")


def test_a_resume_runs_the_jobs_adamw_whatever_the_checkpoint_was_written_with(
    workdir: Workdir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    adamw = torch.optim.AdamW
    folder = workdir("bert-teacher", "bert-student")
    hp = {"batch_size": 4, "epochs": 2, "checkpoint_every": 2, "eval_fraction": 0.0}
    job = tiny.job(folder, hyperparameters=hp)
    # a checkpoint from before the fused default: its optimiser state says fused False
    monkeypatch.setattr(torch.optim, "AdamW", lambda *a, **k: adamw(*a, **k | {"fused": False}))
    with pytest.raises(JobInterrupted):
        run_job(job, device="cpu", stop_after=2)
    monkeypatch.undo()
    checkpoints = folder / "out" / "run" / "checkpoints"
    saved = torch.load(sorted(checkpoints.iterdir())[-1], weights_only=False)
    assert saved["optimiser"]["param_groups"][0]["fused"] is False
    with pytest.raises(JobInterrupted):
        run_job(job, device="cpu", resume=True, stop_after=2)
    last = torch.load(sorted(checkpoints.iterdir())[-1], weights_only=False)
    assert last["step"] == 4 and last["optimiser"]["param_groups"][0]["fused"] is True


def test_bf16_on_a_cuda_device_without_it_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from distill.models import autocast_dtype

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    cuda = torch.device("cuda")
    with pytest.raises(DeviceError, match="does not support bfloat16"):
        autocast_dtype(cuda, "bf16")
    assert autocast_dtype(cuda, "auto") == torch.float16
    assert autocast_dtype(cuda, "fp32") is None
    assert autocast_dtype(torch.device("cpu"), "auto") is None


@pytest.mark.gpu
def test_cuda_run_uses_the_gpu(workdir: Workdir) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    folder = workdir("bert-teacher", "bert-student")
    record = run_job(tiny.job(folder, hyperparameters={"max_steps": 2}), device="cuda").provenance
    assert record["training"]["device"].startswith("cuda")


def test_cuda_without_a_device_is_a_clear_error(workdir: Workdir) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    folder = workdir("bert-teacher", "bert-student")
    with pytest.raises(DeviceError, match="--device cuda: no CUDA device is available"):
        run_job(tiny.job(folder), device="cuda")


def test_methods_command_lists_every_method_and_its_options() -> None:
    from typer.testing import CliRunner

    from distillguard.cli import build_app

    result = CliRunner().invoke(build_app(), ["distill", "methods"])
    assert result.exit_code == 0, result.output
    for name in ("logit:", "hidden_state:", "output:", "reasoning_trace:"):
        assert name in result.output
    assert "top_k (default 20)" in result.output and "layer_map (default {})" in result.output
    assert "Undefined" not in result.output
    assert "prune_until (default 0.0)" in result.output
