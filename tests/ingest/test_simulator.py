"""The traffic simulator: contract, determinism, knobs, populations' shapes and no label leakage."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ingest.contract import ACCOUNTS_ARROW_SCHEMA, CALLS_ARROW_SCHEMA
from ingest.simulator import (
    LABELS_ARROW_SCHEMA,
    SimulationConfig,
    SimulationResult,
    simulate,
    write,
)
from ingest.simulator.catalog import COUNTRIES
from ingest.simulator.exceptions import SimulatorError
from ingest.simulator.templates import (
    RING_TEMPLATES,
    STUDENT_PLAIN_TEMPLATES,
    STUDENT_STEP_TEMPLATES,
    split,
)

SMALL: dict[str, Any] = {
    "seed": 11,
    "days": 7,
    "people": {"accounts": 600},
    "orgs": {"orgs": 10},
    "cohorts": {"cohorts": 3},
    "benchmarks": {"runners": 3, "max_problems": 120},
    "integrators": {"integrators": 3, "calls_per_day_median": 80},
    "rings": {"rings": 3, "accounts": 90},
}


def small(**changes: Any) -> SimulationConfig:
    data: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in SMALL.items()}
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            data.setdefault(section, {})[key] = value
        else:
            data[section] = value
    return SimulationConfig.model_validate(data)


@pytest.fixture(scope="module")
def result() -> SimulationResult:
    return simulate(small())


_ROWS: dict[int, tuple[pa.Table, list[dict[str, Any]]]] = {}


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """The table as dicts (converted once per table)."""
    if id(table) not in _ROWS or _ROWS[id(table)][0] is not table:
        _ROWS[id(table)] = (table, table.to_pylist())
    return _ROWS[id(table)][1]


def by_account(result: SimulationResult) -> dict[str, dict[str, Any]]:
    """Each account's row joined with its label."""
    labels = {r["account_id"]: r for r in rows(result.labels)}
    return {r["account_id"]: {**r, **labels[r["account_id"]]} for r in rows(result.accounts)}


def calls_of(result: SimulationResult, role: str) -> list[dict[str, Any]]:
    roles = dict(
        zip(*result.labels.select(["account_id", "role"]).to_pydict().values(), strict=True)
    )
    return [c for c in rows(result.calls) if roles[c["account_id"]] == role]


def subnet(ip: str) -> str:
    return ip.rsplit(".", 1)[0]


def strip(prompt: str, templates: tuple[str, ...]) -> str:
    """The problem inside a templated prompt (the longest template that fits is removed)."""
    best = prompt
    for before, after in sorted((split(t) for t in templates), key=lambda p: -len(p[0] + p[1])):
        if (
            prompt.startswith(before)
            and prompt.endswith(after)
            and len(prompt) >= len(before + after)
        ):
            return prompt[len(before) : len(prompt) - len(after)]
    return best


# --- the contract ---------------------------------------------------------------------------------


def test_tables_have_the_contract_schemas(result: SimulationResult) -> None:
    assert result.calls.schema.equals(CALLS_ARROW_SCHEMA)
    assert result.accounts.schema.equals(ACCOUNTS_ARROW_SCHEMA)
    assert result.labels.schema.equals(LABELS_ARROW_SCHEMA)


def test_required_fields_are_present_and_ids_unique(result: SimulationResult) -> None:
    for table, names in (
        (result.calls, ("call_id", "ts", "account_id", "prompt")),
        (result.accounts, ("account_id", "created_at")),
        (result.labels, ("account_id", "is_fraud", "role")),
    ):
        for name in names:
            assert table.column(name).null_count == 0, name
    call_ids = result.calls.column("call_id").to_pylist()
    assert len(set(call_ids)) == len(call_ids)
    uuid4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    assert all(uuid4.fullmatch(c) for c in call_ids[:2000])
    account_ids = result.accounts.column("account_id").to_pylist()
    assert len(set(account_ids)) == len(account_ids)
    assert set(result.labels.column("account_id").to_pylist()) == set(account_ids)
    assert set(result.calls.column("account_id").to_pylist()) <= set(account_ids)


def test_calls_are_inside_the_window_and_after_sign_up(result: SimulationResult) -> None:
    start = result.config.start
    end = start + dt.timedelta(days=result.config.days)
    created = {r["account_id"]: r["created_at"] for r in rows(result.accounts)}
    ts = result.calls.column("ts").to_pylist()
    assert ts == sorted(ts)
    assert start <= ts[0] and ts[-1] < end
    late = [c for c in rows(result.calls) if c["ts"] < created[c["account_id"]]]
    assert late == []


def test_call_fields_are_consistent(result: SimulationResult) -> None:
    calls = rows(result.calls)
    statuses = Counter(c["status_code"] for c in calls)
    assert statuses[200] / len(calls) > 0.95
    assert set(statuses) - {200} and set(statuses) <= {200, 400, 401, 429, 500, 503}
    assert {c["endpoint"] for c in calls} == {"/v1/chat/completions", "/v1/messages"}
    assert {c["model"] for c in calls} == set(result.config.traffic.models)
    for c in calls:
        assert (c["response"] is None) == (c["status_code"] != 200)
        chars = len(c["prompt"]) + len(c["system_prompt"] or "")
        assert chars / 4.5 + 7 <= c["prompt_tokens"] <= chars / 3.5 + 8
        if c["response"] is not None:
            assert (
                len(c["response"]) / 4.5 <= c["completion_tokens"] <= len(c["response"]) / 3.5 + 1
            )
        assert c["latency_ms"] > 0
    sdk = [c for c in calls if c["user_agent"].startswith("Anthropic/")]
    assert sdk and all(c["endpoint"] == "/v1/messages" for c in sdk)
    ok = [c["latency_ms"] for c in calls if c["status_code"] == 200]
    assert 200 < float(np.median(ok)) < 5000


def test_ids_do_not_tell_populations_apart(result: SimulationResult) -> None:
    accounts = by_account(result)
    assert all(re.fullmatch(r"acct_[0-9a-f]{24}", a) for a in accounts)
    keys = {c["api_key_id"] for c in rows(result.calls)}
    assert all(re.fullmatch(r"key_[0-9a-f]{20}", k) for k in keys)
    # rows are shuffled: ring accounts are not one block of accounts.parquet
    fraud = [accounts[a]["is_fraud"] for a in result.accounts.column("account_id").to_pylist()]
    switches = sum(1 for x, y in itertools.pairwise(fraud) if x != y)
    assert switches > 40


# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_same_tables_and_other_seed_other_tables(result: SimulationResult) -> None:
    again = simulate(small())
    assert again.calls.equals(result.calls)
    assert again.accounts.equals(result.accounts)
    assert again.labels.equals(result.labels)
    other = simulate(small(seed=12))
    assert not other.calls.equals(result.calls)


def test_ring_knobs_leave_benign_populations_unchanged(result: SimulationResult) -> None:
    more_rings = simulate(small(rings__rings=5, rings__accounts=150))
    people = {r["account_id"] for r in rows(result.labels) if r["role"] == "person"}
    people_again = {r["account_id"] for r in rows(more_rings.labels) if r["role"] == "person"}
    assert len(people) == len(people_again) == 600


# --- knobs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rings", "accounts"), [(1, 2), (4, 57), (0, 0)])
def test_configured_rings_and_ring_accounts(rings: int, accounts: int) -> None:
    out = simulate(small(rings__rings=rings, rings__accounts=accounts))
    labels = rows(out.labels)
    members = [r for r in labels if r["is_fraud"]]
    assert len(members) == accounts
    assert all(r["role"] == "ring_member" and r["ring_id"] for r in members)
    assert all(r["ring_id"] is None for r in labels if not r["is_fraud"])
    sizes = Counter(r["ring_id"] for r in members)
    assert len(sizes) == rings and all(n >= 2 for n in sizes.values())
    assert out.summary()["rings"] == rings
    assert out.summary()["roles"]["ring_member"] == accounts


def test_population_sizes_follow_the_config(result: SimulationResult) -> None:
    roles = result.summary()["roles"]
    assert roles["person"] == 600
    assert roles["benchmark_runner"] == 3
    assert roles["integrator"] == 3
    assert 3 * 20 <= roles["student"] <= 3 * 60
    assert (
        len({r["org_id"] for r in rows(result.accounts) if r["org_id"]}) == 10 + 3
    )  # + integrators


def test_scale_multiplies_population_sizes() -> None:
    cfg = small().scaled(0.5)
    assert cfg.people.accounts == 300
    assert cfg.rings.accounts == 45
    assert cfg.rings.rings == 2  # round(1.5)
    assert cfg.cohorts.cohorts == 2


def test_cover_fraction_mixes_benign_prompts_into_ring_traffic() -> None:
    markers = ("step", "reason", "working", "derivation", "chain of thought", "logic", "work")

    def share_reasoning(cover: float) -> float:
        out = simulate(small(rings__cover_fraction=cover))
        prompts = [c["prompt"].lower() for c in calls_of(out, "ring_member")]
        return sum(any(m in p for m in markers) for p in prompts) / len(prompts)

    assert share_reasoning(0.0) == 1.0
    assert 0.4 < share_reasoning(0.5) < 0.65


# --- populations ----------------------------------------------------------------------------------


def test_benign_people_are_diurnal_in_their_own_time_zone(result: SimulationResult) -> None:
    accounts = by_account(result)
    hours: list[int] = []
    for c in calls_of(result, "person"):
        offsets = COUNTRIES[accounts[c["account_id"]]["country"]][1]
        if len(offsets) == 1:
            local = c["ts"] + dt.timedelta(hours=offsets[0])
            hours.append(local.hour)
    share_day = sum(8 <= h < 24 for h in hours) / len(hours)
    share_small_hours = sum(1 <= h < 6 for h in hours) / len(hours)
    assert share_day > 0.85
    assert share_small_hours < 0.06
    # ... which in UTC is spread over the whole day, because people live in many time zones
    utc_hours = Counter(c["ts"].hour for c in calls_of(result, "person"))
    assert len(utc_hours) == 24


def test_benign_volume_is_heavy_tailed(result: SimulationResult) -> None:
    per_account = Counter(c["account_id"] for c in calls_of(result, "person"))
    counts = np.array(sorted(per_account.values()))
    assert counts.max() > 8 * np.median(counts)
    top = counts[-len(counts) // 10 :].sum() / counts.sum()
    assert top > 0.35  # the busiest tenth of people make over a third of the calls


def test_organisation_members_share_card_domain_and_office(result: SimulationResult) -> None:
    accounts = by_account(result)
    members: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in accounts.values():
        if a["role"] == "org_member":
            members[a["org_id"]].append(a)
    assert len(members) == 10
    office_calls: dict[str, Counter[str]] = defaultdict(Counter)
    for c in calls_of(result, "org_member"):
        office_calls[accounts[c["account_id"]]["org_id"]][subnet(c["client_ip"])] += 1
    on_company_card = 0
    for people in members.values():
        cards = Counter(a["payment_fingerprint"] for a in people)
        assert len({a["email_domain"] for a in people}) == 1
        assert len({a["plan"] for a in people}) == 1 and people[0]["plan"] in ("team", "enterprise")
        if len(people) >= 4:
            assert cards.most_common(1)[0][1] >= 2  # a company card
        on_company_card += cards.most_common(1)[0][1]
    assert on_company_card / sum(len(p) for p in members.values()) > 0.75
    # most calls come from each organisation's office /24
    office = sum(calls.most_common(1)[0][1] for calls in office_calls.values())
    assert office / sum(sum(calls.values()) for calls in office_calls.values()) > 0.7


def test_student_cohorts_share_an_address_and_the_same_problems(result: SimulationResult) -> None:
    accounts = by_account(result)
    templates = STUDENT_STEP_TEMPLATES + STUDENT_PLAIN_TEMPLATES
    cohorts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in calls_of(result, "student"):
        cohorts[accounts[c["account_id"]]["email_domain"]].append(c)
    assert len(cohorts) == 3
    for calls in cohorts.values():
        students = {c["account_id"] for c in calls}
        nets = Counter(subnet(c["client_ip"]) for c in calls)
        campus, hits = nets.most_common(1)[0]
        assert hits / len(calls) > 0.55
        on_campus = {c["account_id"] for c in calls if subnet(c["client_ip"]) == campus}
        assert len(on_campus) / len(students) > 0.8
        askers: dict[str, set[str]] = defaultdict(set)
        for c in calls:
            askers[strip(c["prompt"], templates)].add(c["account_id"])
        cfg = result.config.cohorts
        assert len(askers) <= cfg.assignments * cfg.problems_per_assignment
        shared = sum(len(who) >= 3 for who in askers.values()) / len(askers)
        assert shared > 0.9
        steps = sum("step" in c["prompt"] or "working" in c["prompt"] for c in calls) / len(calls)
        assert steps > 0.3


def test_benchmark_runners_send_a_whole_test_set_in_a_burst(result: SimulationResult) -> None:
    per_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in calls_of(result, "benchmark_runner"):
        per_account[c["account_id"]].append(c)
    assert len(per_account) == 3
    for calls in per_account.values():
        prompts = [c["prompt"] for c in calls]
        assert len(calls) >= 40
        assert len(set(prompts)) >= 0.5 * len(prompts)
        per_hour = Counter(c["ts"].replace(minute=0, second=0, microsecond=0) for c in calls)
        assert max(per_hour.values()) >= 40  # a burst, not a trickle
        assert len({c["client_ip"] for c in calls}) == 1
        assert all("step by step" in p.lower() for p in prompts)


def test_integrators_are_old_accounts_with_one_template_round_the_clock(
    result: SimulationResult,
) -> None:
    accounts = by_account(result)
    per_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in calls_of(result, "integrator"):
        per_account[c["account_id"]].append(c)
    assert len(per_account) == 3
    for account_id, calls in per_account.items():
        age = result.config.start - accounts[account_id]["created_at"]
        assert age >= dt.timedelta(days=365)
        assert len({c["system_prompt"] for c in calls}) == 1
        assert len({c["prompt"][:25] for c in calls}) == 1  # one fixed template
        assert len(calls) / result.config.days > 30
        assert len({c["ts"].hour for c in calls}) == 24


def test_rings_partition_a_question_bank_and_stay_low_volume(result: SimulationResult) -> None:
    out = simulate(small(rings__cover_fraction=0.0))
    accounts = by_account(out)
    per_ring: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    per_account_days: dict[str, set[dt.date]] = defaultdict(set)
    for c in calls_of(out, "ring_member"):
        ring = accounts[c["account_id"]]["ring_id"]
        per_ring[ring][c["account_id"]].append(strip(c["prompt"], RING_TEMPLATES))
        per_account_days[c["account_id"]].add(c["ts"].date())
    for members in per_ring.values():
        for questions in members.values():
            assert len(set(questions)) / len(questions) > 0.8  # no one account repeats much
        owners: dict[str, set[str]] = defaultdict(set)
        for account_id, questions in members.items():
            for q in questions:
                owners[q].add(account_id)
        assert sum(len(o) == 1 for o in owners.values()) / len(owners) > 0.9  # partitioned
    rates = [
        sum(len(q) for m in per_ring.values() for a, q in m.items() if a == account_id) / len(days)
        for account_id, days in per_account_days.items()
    ]
    assert 5 < float(np.median(rates)) < 60  # order of the real ~26 calls/account/day


def test_rings_share_cards_in_small_groups_and_rotate_proxies(result: SimulationResult) -> None:
    accounts = by_account(result)
    members = [a for a in accounts.values() if a["is_fraud"]]
    groups = Counter(a["payment_fingerprint"] for a in members if a["payment_fingerprint"])
    assert max(groups.values()) <= result.config.rings.card_group_max
    assert any(n >= 2 for n in groups.values())
    assert sum(n == 1 for n in groups.values()) > 0  # some cards are not shared at all
    ip_users: dict[str, set[str]] = defaultdict(set)
    ips_per_account: dict[str, set[str]] = defaultdict(set)
    for c in calls_of(result, "ring_member"):
        ip_users[c["client_ip"]].add(c["account_id"])
        ips_per_account[c["account_id"]].add(c["client_ip"])
    assert any(len(users) >= 3 for users in ip_users.values())  # a proxy shared across accounts
    assert np.median([len(ips) for ips in ips_per_account.values()]) >= 3  # rotated
    created = sorted(a["created_at"] for a in members)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(created)]
    assert np.median(gaps) < 3600  # sign-ups come in waves


# --- no label leakage -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_field_value_exists_only_among_ring_accounts(seed: int) -> None:
    out = simulate(small(seed=seed))
    accounts = by_account(out)
    for column in ("email_domain", "plan", "country"):
        ring_values = {a[column] for a in accounts.values() if a["is_fraud"]}
        benign_values = {a[column] for a in accounts.values() if not a["is_fraud"]}
        assert ring_values <= benign_values, column
    fraud = pc.is_in(
        out.calls.column("account_id"),
        value_set=pa.array([a for a, row in accounts.items() if row["is_fraud"]]),
    )
    for column in ("user_agent", "system_prompt", "endpoint", "model", "status_code"):
        values = out.calls.column(column)
        ring = set(pc.unique(values.filter(fraud)).to_pylist())
        benign = set(pc.unique(values.filter(pc.invert(fraud))).to_pylist())
        assert ring and ring <= benign, column
    # some of the exact reasoning-eliciting wordings rings use appear in benign traffic too
    benign_prompts = out.calls.column("prompt").filter(pc.invert(fraud)).to_pylist()
    for template in (RING_TEMPLATES[0], RING_TEMPLATES[2]):
        before, after = split(template)
        assert any(p.startswith(before) and p.endswith(after) for p in benign_prompts)


def test_rings_are_not_given_away_by_one_account_field(result: SimulationResult) -> None:
    accounts = list(by_account(result).values())
    ring = [a for a in accounts if a["is_fraud"]]
    people = [a for a in accounts if a["role"] == "person"]
    assert all(a["org_id"] is None for a in ring)
    share_free = sum(a["plan"] == "free" for a in ring) / len(ring)
    assert 0.25 < share_free < 0.85  # like people, not all one plan
    share_no_card = sum(a["payment_fingerprint"] is None for a in ring) / len(ring)
    people_no_card = sum(a["payment_fingerprint"] is None for a in people) / len(people)
    assert abs(share_no_card - people_no_card) < 0.2


# --- writing --------------------------------------------------------------------------------------


def test_write_creates_the_three_files(tmp_path: Path, result: SimulationResult) -> None:
    paths = write(result, tmp_path / "out")
    assert {p.name for p in paths.values()} == {
        "accounts.parquet",
        "calls.parquet",
        "labels.parquet",
    }
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in paths.values()
    )
    assert pq.read_table(paths["calls"]).equals(result.calls)
    assert pq.read_schema(paths["accounts"]).equals(ACCOUNTS_ARROW_SCHEMA)
    assert pq.read_table(paths["labels"]).num_rows == result.accounts.num_rows


def test_write_refuses_a_file_as_folder(tmp_path: Path, result: SimulationResult) -> None:
    target = tmp_path / "taken"
    target.write_text("not a folder")
    with pytest.raises(SimulatorError, match="taken"):
        write(result, target)
    assert target.read_text() == "not a folder"


def test_rings_without_any_benign_population_are_refused() -> None:
    empty = small(
        people__accounts=0,
        orgs__orgs=0,
        cohorts__cohorts=0,
        benchmarks__runners=0,
        integrators__integrators=0,
    )
    with pytest.raises(SimulatorError, match="benign population"):
        simulate(empty)


def test_written_files_load_into_the_warehouse_tables(
    tmp_path: Path, result: SimulationResult
) -> None:
    from ingest.contract import ACCOUNT_COLUMN_NAMES, CALL_COLUMN_NAMES
    from ingest.warehouse import Warehouse

    paths = write(result, tmp_path / "sim")
    with Warehouse.open(tmp_path / "w.duckdb") as warehouse:
        for table, names in (("calls", CALL_COLUMN_NAMES), ("accounts", ACCOUNT_COLUMN_NAMES)):
            columns = ", ".join(names)
            warehouse.execute(
                f"INSERT INTO {table} ({columns}, batch_id) "
                f"SELECT {columns}, 1 FROM read_parquet($path)",
                {"path": str(paths[table])},
            )
        assert warehouse.scalar("SELECT count(*) FROM calls") == result.calls.num_rows
        orphans = warehouse.scalar(
            "SELECT count(*) FROM calls c ANTI JOIN accounts a USING (account_id)"
        )
        assert orphans == 0
        assert warehouse.scalar("SELECT count(DISTINCT call_id) FROM calls") == (
            result.calls.num_rows
        )


def test_ring_timing_knob_switches_between_human_and_round_the_clock() -> None:
    def night_share(timing: str) -> float:
        out = simulate(small(rings__timing=timing, rings__sync_fraction=0.0))
        accounts = by_account(out)
        hours = []
        for c in calls_of(out, "ring_member"):
            offsets = COUNTRIES[accounts[c["account_id"]]["country"]][1]
            if len(offsets) == 1:
                hours.append((c["ts"] + dt.timedelta(hours=offsets[0])).hour)
        return sum(1 <= h < 6 for h in hours) / len(hours)

    assert night_share("human") < 0.08  # people sleep, and so do rings that pose as people
    assert night_share("uniform") > 0.15  # five night hours of twenty-four: about 0.21


def test_datacenter_rate_knob_moves_ring_traffic_onto_datacenter_subnets() -> None:
    all_dc = simulate(small(rings__datacenter_rate=1.0, rings__datacenter_subnets=2))
    nets: dict[str, set[str]] = defaultdict(set)
    accounts = by_account(all_dc)
    for c in calls_of(all_dc, "ring_member"):
        nets[accounts[c["account_id"]]["ring_id"]].add(subnet(c["client_ip"]))
    assert nets and all(len(n) <= 2 for n in nets.values())
    residential = simulate(small(rings__datacenter_rate=0.0))
    ring_nets = Counter(subnet(c["client_ip"]) for c in calls_of(residential, "ring_member"))
    assert max(ring_nets.values()) / sum(ring_nets.values()) < 0.05  # spread over many /24s
