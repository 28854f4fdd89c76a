"""Differential raw-protocol tests.

Each scenario in protocol_scenarios.SCENARIOS sends raw bytes (after the INFO
line) and records, per connection, what the server sent back and whether it
closed the connection.  The server under test must match

* the committed recording from the reference nats-server
  (protocol_expected.json, regenerate with record_protocol.py), and
* when the reference binary is available, a live run against it.

Only protocol-irrelevant variation is normalised (see
protocol_scenarios.canonical): server-initiated PINGs and the order of
copies of one message delivered to several subscriptions of a connection.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import _launch, reference_available, reference_bin, server_bin
from protocol_scenarios import SCENARIOS, _sent_digest, comparable, render, run_all

EXPECTED_PATH = Path(__file__).resolve().parent / "protocol_expected.json"
EXPECTED = json.loads(EXPECTED_PATH.read_text())["scenarios"]
NAMES = list(SCENARIOS)


def _run_against(binary: Path) -> dict:
    srv = _launch(binary, [])
    try:
        results = run_all(srv.port)
        if srv.proc.poll() is not None:
            pytest.fail(f"server exited during the protocol scenarios:\n{srv.log()}", pytrace=False)
        return results
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def under_test() -> dict:
    return _run_against(server_bin())


@pytest.fixture(scope="module")
def reference() -> dict:
    ok, why = reference_available()
    if not ok:
        pytest.skip(f"reference nats-server not available: {why}")
    return _run_against(reference_bin())


def test_expected_file_matches_scenarios():
    assert set(EXPECTED) == set(SCENARIOS), (
        "protocol_expected.json is out of date (scenario names differ); "
        "re-run tests/python/record_protocol.py"
    )
    stale = [n for n in NAMES if EXPECTED[n]["digest"] != _sent_digest(SCENARIOS[n])]
    assert not stale, f"scenarios changed since recording: {stale}; re-run tests/python/record_protocol.py"


@pytest.mark.parametrize("name", NAMES)
def test_matches_recorded_reference(name, under_test):
    expected = EXPECTED.get(name)
    if expected is None or expected["digest"] != _sent_digest(SCENARIOS[name]):
        pytest.fail(f"no current recording for {name}; re-run tests/python/record_protocol.py", pytrace=False)
    got = under_test[name]
    assert comparable(got) == comparable(expected), (
        f"scenario {name}\nsent:     {expected['sent']!r}\n"
        f"expected (nats-server):\n{render(expected)}\nactual:\n{render(got)}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_matches_live_reference(name, under_test, reference):
    got, ref = under_test[name], reference[name]
    assert "error" not in ref, f"reference run failed: {ref['error']}"
    assert comparable(got) == comparable(ref), (
        f"scenario {name}\nreference (live):\n{render(ref)}\nactual:\n{render(got)}"
    )
