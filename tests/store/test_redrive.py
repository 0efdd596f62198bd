"""The key a dead letter is re-driven with: the one its producer gave it, from its bytes."""

from __future__ import annotations

import orjson

from pipeline.intent_ids import INPUT_TOPIC, submission_key
from pipeline.store.redrive import original_key
from pipeline.topology import load_topology

TOPOLOGY = load_topology()


def test_a_submission_gets_its_submission_key_back() -> None:
    body = {"strategyId": "dca", "clientIntentId": "c-1"}
    assert TOPOLOGY.topic(INPUT_TOPIC).key == "submission_key"
    assert original_key(TOPOLOGY, INPUT_TOPIC, orjson.dumps(body)) == submission_key("dca", "c-1")
    del body["clientIntentId"]
    assert original_key(TOPOLOGY, INPUT_TOPIC, orjson.dumps(body)) == "dca"


def test_a_submission_without_a_readable_strategy_has_no_key() -> None:
    for value in (b"[1]", b"{}", orjson.dumps({"strategyId": 7}), b"not json"):
        assert original_key(TOPOLOGY, INPUT_TOPIC, value) is None
    odd_client = orjson.dumps({"strategyId": "dca", "clientIntentId": 5})
    assert original_key(TOPOLOGY, INPUT_TOPIC, odd_client) is None


def test_an_event_gets_its_intent_id_back() -> None:
    event = orjson.dumps({"correlationId": "intent-x", "topic": "intent.submitted"})
    assert original_key(TOPOLOGY, "sep.intents.ingested", event) == "intent-x"
