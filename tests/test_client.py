"""submit_once: claim, then produce; a duplicate is answered, never sent; a failed send
leaves no claim behind."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.client import IntentProducer, Submitted, predicted_intent_id, submit_once
from pipeline.intent_ids import submission_key
from pipeline.models.intent import IntentSubmission
from pipeline.priority.submit_lanes import SubmitLanes
from pipeline.samples import submission
from pipeline.store.dedupe import MemoryDedupeStore, dedupe_key
from pipeline.topology import load_topology
from tests.lanes_support import lanes_on

TOPOLOGY = load_topology()
T0 = 1_700_000_000_000


class RecordingProducer(IntentProducer):
    """Keeps what it would send; fails while ``failing`` (a broker that is away)."""

    def __init__(self, lanes: SubmitLanes | None = None) -> None:
        # no Kafka producer inside: nothing is ever sent
        self.sent: list[tuple[Any, str | None, int | None]] = []
        self.topics: list[str | None] = []
        self.failing = False
        self.lanes = lanes
        self.topology = None

    async def send(
        self,
        body: dict[str, Any] | bytes,
        *,
        key: str | None = None,
        timestamp_ms: int | None = None,
        topic: str | None = None,
    ) -> tuple[int, Any]:
        if self.failing:
            raise ConnectionError("broker away")
        self.sent.append((body, key, timestamp_ms))
        self.topics.append(topic)

        async def delivered() -> None:
            return None

        return timestamp_ms or 0, delivered()


def sub(
    client_intent_id: str | None = "c-1", window_ms: int = 300_000, style: str = "ADAPTIVE"
) -> IntentSubmission:
    return IntentSubmission.model_validate(
        submission(
            TOPOLOGY,
            "DISPOSE",
            "WETH",
            "USDC",
            "1",
            strategy_id="s",
            client_intent_id=client_intent_id,
            time_window_ms=window_ms,
            style=style,
        )
    )


async def test_first_submission_is_sent_with_the_timestamp_its_id_derives_from() -> None:
    producer, store = RecordingProducer(), MemoryDedupeStore(60, clock=lambda: T0)
    result = await submit_once(producer, store, sub(), timestamp_ms=T0)
    assert result == Submitted(
        predicted_intent_id(T0, "s", "c-1"), duplicate=False, timestamp_ms=T0
    )
    [(body, key, stamp)] = producer.sent
    assert (body["clientIntentId"], key, stamp) == ("c-1", submission_key("s", "c-1"), T0)
    assert store.owner(dedupe_key("s", "c-1")) == result.intent_id


async def test_a_duplicate_is_answered_with_the_first_id_and_not_sent() -> None:
    producer, store = RecordingProducer(), MemoryDedupeStore(60, clock=lambda: T0)
    first = await submit_once(producer, store, sub(), timestamp_ms=T0)
    again = await submit_once(producer, store, sub(), timestamp_ms=T0 + 5)
    assert (again.intent_id, again.duplicate) == (first.intent_id, True)
    assert len(producer.sent) == 1


async def test_a_failed_send_releases_the_claim() -> None:
    producer, store = RecordingProducer(), MemoryDedupeStore(60, clock=lambda: T0)
    producer.failing = True
    with pytest.raises(ConnectionError):
        await submit_once(producer, store, sub(), timestamp_ms=T0)
    assert store.owner(dedupe_key("s", "c-1")) is None
    producer.failing = False
    retry = await submit_once(producer, store, sub(), timestamp_ms=T0 + 5)
    assert not retry.duplicate  # not a "duplicate" of an intent that never existed


async def test_a_submission_without_client_id_cannot_be_claimed() -> None:
    with pytest.raises(ValueError, match="client intent id"):
        await submit_once(RecordingProducer(), MemoryDedupeStore(60), sub(None), timestamp_ms=T0)


async def test_without_lanes_every_submission_goes_to_the_plain_input_topic() -> None:
    producer, store = RecordingProducer(), MemoryDedupeStore(60, clock=lambda: T0)
    await submit_once(producer, store, sub(), timestamp_ms=T0)
    assert producer.topics == ["sep.intents.submitted"]
    assert SubmitLanes(TOPOLOGY).topic_of(sub()) == "sep.intents.submitted"  # lanes off


async def test_with_lanes_a_submission_goes_to_the_input_lane_of_its_score() -> None:
    producer = RecordingProducer(SubmitLanes(lanes_on()))
    store = MemoryDedupeStore(60, clock=lambda: T0)
    await submit_once(producer, store, sub("u", 5_000, "AGGRESSIVE"), timestamp_ms=T0)
    await submit_once(producer, store, sub("r", 3_600_000, "PASSIVE"), timestamp_ms=T0)
    assert producer.topics == ["sep.intents.submitted.fast", "sep.intents.submitted.bulk"]


def test_the_lane_is_chosen_in_one_batch_and_bad_input_goes_to_the_plain_topic() -> None:
    lanes = SubmitLanes(lanes_on())
    assert lanes.topics_of([sub("u", 5_000, "AGGRESSIVE"), sub("r", 3_600_000, "PASSIVE")]) == [
        "sep.intents.submitted.fast",
        "sep.intents.submitted.bulk",
    ]
    assert lanes.topics_of([]) == []
    # Not a valid submission: ingest rejects it with the reason, from the plain topic.
    assert lanes.topic_of_body({"strategyId": "s"}) == "sep.intents.submitted"
    assert lanes.topic_of_body(sub("u", 5_000, "AGGRESSIVE").to_wire()) == (
        "sep.intents.submitted.fast"
    )
