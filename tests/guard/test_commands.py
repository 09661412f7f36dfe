"""The gateway commands' own checks, before any server starts."""

from __future__ import annotations

import pytest

from distillguard.cli import main


def test_gateway_refuses_a_bad_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["gateway", "--upstream", "ftp://model.example"])
    assert exit_.value.code == 2
    assert "--upstream must be an http:// or https:// URL" in capsys.readouterr().err


def test_gateway_refuses_an_unknown_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["gateway", "--upstream-protocol", "grpc"])
    assert exit_.value.code == 2
    assert "upstream_protocol" in capsys.readouterr().err


def test_mock_upstream_needs_the_key_it_is_told_to_require(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["mock-upstream", "--api-key-env", "GUARD_TEST_UNSET_VARIABLE"])
    assert exit_.value.code == 2
    assert "GUARD_TEST_UNSET_VARIABLE, which is not set" in capsys.readouterr().err
