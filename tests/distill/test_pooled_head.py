"""``pooled_head: linear``: a linear map on the pooled embedding, saved as a Dense layer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from distill.exceptions import DistillError
from distill.job import run_job
from tests.distill import tiny

if TYPE_CHECKING:
    from torch import Tensor

Workdir = Callable[..., Path]
HP = {
    "student_layers": [0, 3],
    "embedding_loss": "cosine",
    "layer_map": {2: 4},
    "hidden_loss": "cosine",
    "pooled_head": "linear",
    "batch_size": 8,
    "epochs": 2,
    "learning_rate": 5e-3,
    "eval_fraction": 0.0,
    "max_length": 24,
    "dropout": 0.0,
}


def _sentence_student(workdir: Workdir, student: str = "bert-teacher") -> Path:
    """A tiny teacher and a student (by default of the teacher's layers), both with the bundled
    model's module list."""
    folder = workdir("bert-teacher", student)
    for role in ("teacher", "student"):
        tiny.sentence_files(folder / role)
    return folder


def _prompts(folder: Path) -> list[str]:
    lines = (folder / "prompts.jsonl").read_text().splitlines()
    return [json.loads(line)["prompt"] for line in lines]


def _teacher_cosine(folder: Path, encoded: Tensor) -> float:
    """The mean cosine of ``encoded`` (the prompts, unit vectors) to the teacher's, as the job's
    evaluation encodes them (24 tokens)."""
    import torch
    from sentence_transformers import SentenceTransformer

    teacher = SentenceTransformer(str(folder / "teacher"), device="cpu")
    teacher.max_seq_length = 24
    target = torch.from_numpy(teacher.encode(_prompts(folder), batch_size=4))
    assert encoded.shape == target.shape
    return float((encoded * target).sum(1).mean())


def test_the_head_is_trained_saved_after_pooling_and_is_what_sentence_transformers_runs(
    workdir: Workdir,
) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    folder = _sentence_student(workdir)
    record = run_job(tiny.job(folder, hyperparameters=HP), device="cpu").provenance
    out = folder / "out"
    modules = json.loads((out / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == [
        "Transformer",
        "Pooling",
        "Dense",
        "Normalize",
    ]
    assert [m["idx"] for m in modules] == [0, 1, 2, 3]
    assert modules[2]["path"] == "2_Dense"
    student = SentenceTransformer(str(out), device="cpu")
    dense = student[2].linear
    assert not torch.allclose(dense.weight, torch.eye(32))  # trained from the identity

    # what sentence-transformers encodes is the head on the mean-pooled student, normalised
    texts = _prompts(folder)
    encoded = torch.from_numpy(student.encode(texts, batch_size=4))
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    body = AutoModel.from_pretrained(str(out)).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=24, return_tensors="pt")
    with torch.no_grad():
        hidden = body(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        expected = torch.nn.functional.normalize(dense(pooled), dim=-1)
    assert torch.allclose(encoded, expected, atol=1e-5)

    # the job's own evaluation measured that same model against the teacher
    cosine = _teacher_cosine(folder, encoded)
    assert record["metrics"]["eval_cosine_mean"] == pytest.approx(cosine, abs=1e-4)
    assert record["hyperparameters"]["pooled_head"] == "linear"


def test_a_student_with_a_head_trains_it_on_and_needs_pooled_head_to_do_so(
    workdir: Workdir,
) -> None:
    import torch
    from safetensors.torch import load_file

    from distill.hidden_state_trainer import HiddenStateTrainer
    from distill.job import prepare
    from distill.trainer import JobContext

    folder = _sentence_student(workdir)
    run_job(tiny.job(folder, hyperparameters=HP), device="cpu")
    saved = load_file(str(folder / "out/2_Dense/model.safetensors"))

    def trainer(**changes: object) -> HiddenStateTrainer:
        hp = HP | {"student_layers": None} | changes
        job = prepare(tiny.job(folder, student="out", output_dir="again", hyperparameters=hp))
        from distill.data import load_examples

        examples = load_examples(job.spec.data)
        ctx = JobContext(job.spec, examples, [], torch.device("cpu"), folder / "again-run")
        made = HiddenStateTrainer(ctx, job.config)  # type: ignore[arg-type]
        made.prepare()
        return made

    head = trainer().head
    assert head is not None
    assert torch.equal(head.weight.detach(), saved["linear.weight"])
    assert torch.equal(head.bias.detach(), saved["linear.bias"])
    with pytest.raises(DistillError, match=r"has a Dense layer after pooling \(2_Dense\)"):
        trainer(pooled_head="none")

    # a Dense layer that is not a plain linear map is refused, not trained as one
    settings = json.loads((folder / "out/2_Dense/config.json").read_text())
    settings["activation_function"] = "torch.nn.modules.activation.Tanh"
    (folder / "out/2_Dense/config.json").write_text(json.dumps(settings))
    with pytest.raises(DistillError, match=r"not a linear Dense layer \(activation .*Tanh\)"):
        trainer()


def test_without_a_head_the_module_list_is_the_base_models(workdir: Workdir) -> None:
    folder = _sentence_student(workdir)
    run_job(tiny.job(folder, hyperparameters=HP | {"pooled_head": "none"}), device="cpu")
    modules = json.loads((folder / "out/modules.json").read_text())
    assert modules == json.loads((folder / "student/modules.json").read_text())
    assert not (folder / "out/2_Dense").exists()


def test_a_head_needs_sentence_transformers_files_to_be_saved_in(workdir: Workdir) -> None:
    folder = workdir("bert-teacher", "bert-teacher")  # plain Hugging Face folders
    with pytest.raises(DistillError, match=r"pooled_head saves .* has no modules.json"):
        run_job(tiny.job(folder, hyperparameters=HP), device="cpu")
    assert not (folder / "out" / "model.safetensors").exists()


def test_a_narrower_student_with_a_head_encodes_in_the_teachers_space(workdir: Workdir) -> None:
    """Without a head a student of another width saves no sentence files (its embeddings are not
    the teacher's); with one, sentence-transformers encodes it straight into the teacher's width."""
    import torch
    from sentence_transformers import SentenceTransformer

    folder = _sentence_student(workdir, "bert-student")  # 16 wide, the teacher 32
    hp = HP | {"student_layers": None, "layer_map": {2: 4}, "epochs": 3}
    record = run_job(tiny.job(folder, hyperparameters=hp), device="cpu").provenance
    assert (folder / "out" / "projection.pt").is_file()  # the layer map's, for its token states
    student = SentenceTransformer(str(folder / "out"), device="cpu")
    assert student[2].linear.weight.shape == (32, 16)
    texts = _prompts(folder)
    encoded = torch.from_numpy(student.encode(texts, batch_size=4))
    assert encoded.shape == (len(texts), 32)  # the teacher's width
    cosine = _teacher_cosine(folder, encoded)
    assert record["metrics"]["eval_cosine_mean"] == pytest.approx(cosine, abs=1e-4)

    plain = tiny.job(folder, hyperparameters=hp | {"pooled_head": "none"}, output_dir="plain")
    run_job(plain, device="cpu")
    assert not (folder / "plain" / "modules.json").exists()
