"""``distillguard simulate``, the YAML config and the ``--corpus`` prompt sets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from distillguard.cli import main
from ingest.contract import ACCOUNTS_ARROW_SCHEMA, CALLS_ARROW_SCHEMA
from ingest.simulator import (
    LABELS_ARROW_SCHEMA,
    SimulationConfig,
    load_config,
    load_corpus,
    simulate,
)
from ingest.simulator.exceptions import ConfigError, CorpusError

TINY = ["--scale", "0.1", "--days", "3"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


# --- the command ----------------------------------------------------------------------------------


def test_simulate_writes_the_three_files_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "simulate", "--out", str(tmp_path / "sim"), *TINY)
    assert code == 0, err
    assert pq.read_schema(tmp_path / "sim" / "calls.parquet").equals(CALLS_ARROW_SCHEMA)
    assert pq.read_schema(tmp_path / "sim" / "accounts.parquet").equals(ACCOUNTS_ARROW_SCHEMA)
    labels = pq.read_table(tmp_path / "sim" / "labels.parquet")
    assert labels.schema.equals(LABELS_ARROW_SCHEMA)
    calls = pq.read_table(tmp_path / "sim" / "calls.parquet")
    assert f"calls {calls.num_rows}" in out
    assert f"accounts {labels.num_rows}" in out
    ring_members = int(pc.sum(labels.column("is_fraud")).as_py())
    assert f"ring_member       {ring_members}" in out
    assert "rings 1" in out  # 3 rings scaled by 0.1, at least one


def test_options_set_exact_ring_numbers_and_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--rings", "2", "--ring-accounts", "9", "--seed", "5", "--json", *TINY]
    code, out, err = run(capsys, "simulate", "--out", str(tmp_path / "a"), *args)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["rings"] == 2 and summary["roles"]["ring_member"] == 9
    assert set(summary["files"]) == {"accounts", "calls", "labels"}
    code, _, _ = run(capsys, "simulate", "--out", str(tmp_path / "b"), *args)
    assert code == 0
    first = pq.read_table(tmp_path / "a" / "calls.parquet")
    assert first.equals(pq.read_table(tmp_path / "b" / "calls.parquet"))


def test_config_file_is_applied_and_options_override_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(
        "seed: 3\ndays: 2\npeople: {accounts: 40}\norgs: {orgs: 2}\ncohorts: {cohorts: 1}\n"
        "benchmarks: {runners: 1, max_problems: 20}\nintegrators: {integrators: 1}\n"
        "rings: {rings: 2, accounts: 12, cover_fraction: 0.0}\n"
    )
    out_dir = tmp_path / "out"
    code, out, err = run(
        capsys,
        "simulate",
        "--out",
        str(out_dir),
        "--config",
        str(config),
        "--people",
        "30",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["roles"]["person"] == 30  # the option wins
    assert summary["roles"]["ring_member"] == 12 and summary["rings"] == 2  # the file's values
    assert summary["first_call"] < "2026-11-04"  # days: 2


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("rings: {ringz: 3}\n", "rings.ringz"),
        ("rings: {rings: 2, accounts: 3}\n", "at least 2 per ring"),
        ("people: {accounts: -1}\n", "people.accounts"),
        ("traffic: {error_rates: {200: 0.5}}\n", "4xx/5xx"),
        ("- just\n- a list\n", "mapping"),
        ("days: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_is_refused_with_the_key_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], yaml_text: str, message: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    code, _, err = run(capsys, "simulate", "--out", str(tmp_path / "o"), "--config", str(config))
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rings", "0", "--ring-accounts", "4"], "rings is 0"),
        (["--scale", "0"], "--scale must be > 0"),
        (["--cover-fraction", "1.5"], "rings.cover_fraction"),
        (["--corpus", "/nonexistent/prompts"], "does not exist"),
        (["--config", "/nonexistent/sim.yaml"], "cannot read config"),
    ],
)
def test_bad_options_exit_non_zero_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run(capsys, "simulate", "--out", str(tmp_path / "o"), *args)
    assert code == 2
    assert message in err
    assert not (tmp_path / "o").exists()


def test_out_must_be_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "simulate")
    assert code == 2 and "--out" in err


# --- config ---------------------------------------------------------------------------------------


def test_empty_config_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == SimulationConfig()


def test_show_config_prints_every_knob_as_yaml_that_loads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "simulate", "--show-config", "--rings", "4", "--seed", "9")
    assert code == 0, err
    assert "cover_fraction: 0.15" in out and "error_rates:" in out
    path = tmp_path / "sim.yaml"
    path.write_text(out)
    loaded = load_config(path)
    assert loaded.rings.rings == 4 and loaded.seed == 9
    assert loaded == SimulationConfig().with_overrides({"rings.rings": 4, "seed": 9})
    assert not list(tmp_path.glob("*.parquet"))


def test_with_overrides_validates() -> None:
    cfg = SimulationConfig().with_overrides({"rings.accounts": 100, "days": 7})
    assert cfg.rings.accounts == 100 and cfg.days == 7
    with pytest.raises(ConfigError, match="days"):
        SimulationConfig().with_overrides({"days": 0})


# --- corpus ---------------------------------------------------------------------------------------


def test_corpus_run_uses_the_real_prompt_sets(shared_prompts: Path) -> None:
    cfg = SimulationConfig.model_validate(
        {
            "seed": 4,
            "days": 3,
            "people": {"accounts": 200},
            "orgs": {"orgs": 3},
            "cohorts": {"cohorts": 1},
            "benchmarks": {"runners": 2, "max_problems": 50},
            "integrators": {"integrators": 1},
            "rings": {"rings": 2, "accounts": 30, "cover_fraction": 0.0},
        }
    )
    result = simulate(cfg, shared_prompts)
    assert result.summary()["corpus"] == str(shared_prompts)
    questions = {
        json.loads(line)["question"]
        for name in ("gsm8k_train.jsonl", "gsm8k_test.jsonl")
        for line in (shared_prompts / name).read_text(encoding="utf-8").splitlines()
    }
    vicuna = {
        json.loads(line)["turns"][0]
        for line in (shared_prompts / "vicuna_bench_questions.jsonl").read_text().splitlines()
    }
    prompts = result.calls.column("prompt").to_pylist()
    assert any(any(q in p for q in list(questions)[:3000]) for p in prompts[:3000])
    assert set(prompts) & vicuna  # real benign requests, sent as they are
    # gsm8k worked answers arrive without their <<calculator>> annotations
    responses = [r for r in result.calls.column("response").to_pylist() if r]
    calculator = re.compile(r"<<[\d.+\-*/ ]+=[\d.]+>>")
    assert not any(calculator.search(r) for r in responses)


def test_load_corpus_reads_each_file_in_its_format(shared_prompts: Path) -> None:
    corpus = load_corpus(shared_prompts, np.random.default_rng(0))
    assert {"gsm8k_test", "math500_test", "svamp", "humaneval", "mbpp"} <= set(corpus.benchmarks)
    assert len(corpus.benchmarks["gsm8k_test"]) == 1319
    assert len(corpus.benchmarks["humaneval"]) == 164
    assert corpus.benchmarks["humaneval"].is_code.all()
    svamp = corpus.benchmarks["svamp"]
    assert svamp.prompts[0].startswith("Each pack of dvds costs 76 dollars.")
    assert svamp.short[0] == "51"
    assert len(corpus.benign) > 3000


def test_corpus_folder_without_prompt_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no benign prompt files"):
        load_corpus(tmp_path, np.random.default_rng(0))


def test_malformed_corpus_file_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "vicuna_bench_questions.jsonl").write_text('{"turns": ["Hello there"]}\n')
    (tmp_path / "gsm8k_train.jsonl").write_text(
        '{"question": "1+1?", "answer": "1+1=2\\n#### 2"}\n{"question": broken\n'
    )
    with pytest.raises(CorpusError, match=r"gsm8k_train.jsonl:2: not valid JSON"):
        load_corpus(tmp_path, np.random.default_rng(0))
    (tmp_path / "gsm8k_train.jsonl").write_text('{"question": "1+1?"}\n')
    with pytest.raises(CorpusError, match=r"gsm8k_train.jsonl:1: missing field answer"):
        load_corpus(tmp_path, np.random.default_rng(0))


def test_small_corpus_folder_is_enough(tmp_path: Path) -> None:
    (tmp_path / "vicuna_bench_questions.jsonl").write_text('{"turns": ["How do tides work?"]}\n')
    (tmp_path / "gsm8k_train.jsonl").write_text(
        '{"question": "Tom has 2 apples and buys 3. How many?",'
        ' "answer": "2+3=<<2+3=5>>5\\n#### 5"}\n'
    )
    corpus = load_corpus(tmp_path, np.random.default_rng(0))
    assert list(corpus.problems.short) == ["The answer is 5."]
    assert corpus.problems.worked[0] == "2+3=5\nTherefore, the answer is 5."
    cfg = SimulationConfig().scaled(0.05).with_overrides({"days": 2})
    result = simulate(cfg, corpus)
    assert result.calls.num_rows > 0
