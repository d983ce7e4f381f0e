"""Poison on order-events, on the real stack: every kind ends in order-events-dlq (once per consumer group), the
orders behind it on the same partitions still ship, and a dead letter can be listed and replayed."""

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
SUBSCRIBER_GROUPS = 2  # order-service and fulfillment-service each dead-letter their own copy


def _poison(marker: str) -> dict[str, bytes]:
    """One message of each kind of poison, by kind, each carrying `marker` so its dead letters can be found."""
    return {
        "not JSON": f"this is not JSON {marker}".encode(),
        "type outside the contract": json.dumps(
            {"specversion": "1.0", "id": f"bogus-{marker}", "source": "test", "type": "bogus.v1",
             "data": {"order_id": marker}}
        ).encode(),
        "schema-invalid order.created.v1": json.dumps(
            {"specversion": "1.0", "id": f"invalid-{marker}", "source": "test", "type": "order.created.v1",
             "data": {"order_id": marker}}
        ).encode(),
    }  # fmt: skip


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
    dlq = consumer_at_end("order-events-dlq")
    producer = Producer({"bootstrap.servers": BOOTSTRAP_SERVERS, "log_level": 0})
    markers: dict[str, str] = {}
    for partition in range(PARTITIONS):  # poison ahead of whatever order comes next, on every partition
        marker = f"poison-{uuid.uuid4()}"
        for kind, value in _poison(marker).items():
            kind_marker = f"{marker}-{kind.split()[0]}"
            producer.produce("order-events", value=value.replace(marker.encode(), kind_marker.encode()),
                             key=f"poison-key-{partition}", partition=partition)  # fmt: skip
            markers[kind_marker] = kind
    assert producer.flush(10) == 0

    order_id = order_api.post("/orders", json=new_order()).json()["id"]

    wait_for_status(order_api, order_id, "shipped", timeout=5)
    try:
        _dead_letters_with(dlq, set(markers), SUBSCRIBER_GROUPS)
    finally:
        dlq.close()


def test_a_dead_letter_can_be_listed_and_replayed(stack: Stack) -> None:
    marker = f"replay-{uuid.uuid4()}"
    producer = Producer({"bootstrap.servers": BOOTSTRAP_SERVERS, "log_level": 0})
    producer.produce("order-events", value=_poison(marker)["type outside the contract"], key=marker)
    assert producer.flush(10) == 0

    letters = eventually(
        lambda: [letter for letter in dead_letters.dead_letters() if marker.encode() in letter.value] or None,
        timeout=30,
        what="the dead letter to be listed",
    )
    assert len(letters) == SUBSCRIBER_GROUPS
    assert all(not letter.replayed and letter.key == marker.encode() for letter in letters)

    dlq = consumer_at_end("order-events-dlq")
    try:
        replayed = dead_letters.replay({letters[0].address})
        assert [letter.address for letter in replayed] == [letters[0].address]
        # Replayed onto order-events, it is refused again by both subscribers: two new dead letters.
        assert _dead_letters_with(dlq, {marker}, SUBSCRIBER_GROUPS)[marker] >= SUBSCRIBER_GROUPS
    finally:
        dlq.close()
