"""Poison on both topics, on the real stack: every kind ends in its topic's dead-letter topic (order-events-dlq,
fulfillment-events-dlq), the orders behind it on the same partitions still ship, and a dead letter can be listed and
replayed onto the topic it came from."""

import json
import uuid

import httpx
from confluent_kafka import Consumer, Producer
from devstack import dead_letters
from devstack.kafka import BOOTSTRAP_SERVERS
from devstack.stack import Stack

from tests.support.kafka import consumer_at_end
from tests.support.orders import new_order, wait_for_status
from tests.support.polling import eventually

PARTITIONS = 6
DEAD_LETTER_TOPICS = {"order-events": "order-events-dlq", "fulfillment-events": "fulfillment-events-dlq"}
COPIES = 1  # one app subscribes to each topic, and its sidecar dead-letters the one copy it was delivered


def _cloud_event(marker: str, event_type: str, data: dict[str, str]) -> bytes:
    return json.dumps({"specversion": "1.0", "id": f"{event_type}-{marker}", "source": "test", "type": event_type,
                       "data": {"order_id": marker, **data}}).encode()  # fmt: skip


def _poison(marker: str) -> dict[str, dict[str, bytes]]:
    """By topic, one message of each kind of poison its subscriber refuses, by kind, each carrying `marker` so its
    dead letters can be found."""
    not_json = f"this is not JSON {marker}".encode()
    outside_the_contract = _cloud_event(marker, "bogus.v1", {})
    return {
        "order-events": {
            "not JSON": not_json,
            "type outside the contract": outside_the_contract,
            "schema-invalid order.created.v1": _cloud_event(marker, "order.created.v1", {}),
        },
        "fulfillment-events": {
            "not JSON": not_json,
            "type outside the contract": outside_the_contract,
            "schema-invalid fulfillment.shipped.v1": _cloud_event(marker, "fulfillment.shipped.v1", {}),
            "order event on the wrong topic": _cloud_event(
                marker, "order.cancelled.v1", {"reason": "misrouted", "cancelled_at": "2026-11-24T00:00:00Z"}
            ),
        },
    }


def _dead_letters_with(consumer: Consumer, markers: set[str], copies: int) -> dict[str, int]:
    found: dict[str, int] = dict.fromkeys(markers, 0)

    def all_arrived() -> bool:
        message = consumer.poll(0.2)
        if message is not None and not message.error():
            value = (message.value() or b"").decode(errors="replace")
            for marker in markers:
                found[marker] += marker in value
        return all(count >= copies for count in found.values())

    eventually(all_arrived, timeout=30, interval=0, what=f"dead letters for {sorted(markers)}: {found}")
    return found


def test_poison_is_dead_lettered_while_the_orders_behind_it_ship(stack: Stack, order_api: httpx.Client) -> None:
    dlqs = {topic: consumer_at_end(dead_letter_topic) for topic, dead_letter_topic in DEAD_LETTER_TOPICS.items()}
    producer = Producer({"bootstrap.servers": BOOTSTRAP_SERVERS, "log_level": 0})
    markers: dict[str, set[str]] = {topic: set() for topic in DEAD_LETTER_TOPICS}
    for partition in range(PARTITIONS):  # poison ahead of whatever order comes next, on every partition of both
        marker = f"poison-{uuid.uuid4()}"
        for topic, kinds in _poison(marker).items():
            for kind, value in kinds.items():
                kind_marker = f"{marker}-{topic}-{kind.split()[0]}"
                producer.produce(topic, value=value.replace(marker.encode(), kind_marker.encode()),
                                 key=f"poison-key-{partition}", partition=partition)  # fmt: skip
                markers[topic].add(kind_marker)
    assert producer.flush(10) == 0

    order_id = order_api.post("/orders", json=new_order()).json()["id"]

    wait_for_status(order_api, order_id, "shipped", timeout=5)
    try:
        for topic, dlq in dlqs.items():
            _dead_letters_with(dlq, markers[topic], COPIES)
    finally:
        for dlq in dlqs.values():
            dlq.close()


def test_a_dead_letter_can_be_listed_and_replayed_onto_the_topic_it_came_from(stack: Stack) -> None:
    marker = f"replay-{uuid.uuid4()}"
    producer = Producer({"bootstrap.servers": BOOTSTRAP_SERVERS, "log_level": 0})
    for topic in DEAD_LETTER_TOPICS:
        producer.produce(topic, value=_poison(marker)[topic]["type outside the contract"], key=marker)
    assert producer.flush(10) == 0

    def listed() -> list[dead_letters.DeadLetter] | None:
        found = [letter for letter in dead_letters.dead_letters() if marker.encode() in letter.value]
        return found if len(found) >= len(DEAD_LETTER_TOPICS) else None

    letters = eventually(listed, timeout=30, what="the dead letters to be listed")
    assert sorted(letter.topic for letter in letters) == sorted(DEAD_LETTER_TOPICS.values())
    assert all(not letter.replayed and letter.key == marker.encode() for letter in letters)

    dlqs = [consumer_at_end(dead_letter_topic) for dead_letter_topic in DEAD_LETTER_TOPICS.values()]
    try:
        replayed = dead_letters.replay({letter.address for letter in letters})
        assert sorted(letter.address for letter in replayed) == sorted(letter.address for letter in letters)
        # Each is replayed onto the topic it came from, whose subscriber refuses it again: a new dead letter in
        # each dead-letter topic (one replayed onto the wrong topic would end up in the other one).
        for dlq in dlqs:
            assert _dead_letters_with(dlq, {marker}, COPIES)[marker] >= COPIES
    finally:
        for dlq in dlqs:
            dlq.close()
