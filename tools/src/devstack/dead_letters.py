"""Dead letters: list what landed in order-events-dlq, and replay it onto order-events.

Each subscriber's sidecar dead-letters its own copy of a message its app refused (DROP) or that it could not
deliver, so one poison message shows up once per consumer group. Replaying republishes a dead letter onto
order-events with its key and value unchanged; which dead letters were replayed is remembered as the committed
offsets of the Kafka consumer group `dead-letter-replay`, so `replay` never sends one twice.
"""

import json
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition

from devstack.kafka import BOOTSTRAP_SERVERS

DEAD_LETTER_TOPIC = "order-events-dlq"
TARGET_TOPIC = "order-events"
REPLAY_GROUP = "dead-letter-replay"


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    replayed: bool

    @property
    def address(self) -> str:
        return f"{self.partition}:{self.offset}"

    def summary(self) -> str:
        try:
            event = json.loads(self.value)
            what = f"{event.get('type')} id={event.get('id')} subject={event.get('subject')}"
        except ValueError:
            what = f"(not JSON) {self.value[:60]!r}"
        key = self.key.decode(errors="replace") if self.key else "-"
        return f"{self.address:<10} {'replayed' if self.replayed else 'pending ':<8} key={key:<38} {what}"


def _consumer(group: str) -> Consumer:
    return Consumer(
        {"bootstrap.servers": BOOTSTRAP_SERVERS, "group.id": group, "enable.auto.commit": False, "log_level": 0}
    )


def dead_letters() -> list[DeadLetter]:
    """Every message in the dead-letter topic, each marked replayed or not."""
    reader = _consumer(f"dead-letter-reader-{uuid.uuid4()}")
    replayer = _consumer(REPLAY_GROUP)
    try:
        partitions = reader.list_topics(DEAD_LETTER_TOPIC, timeout=10).topics[DEAD_LETTER_TOPIC].partitions
        replayed_up_to = {
            position.partition: position.offset
            for position in replayer.committed(
                [TopicPartition(DEAD_LETTER_TOPIC, partition) for partition in partitions], timeout=10
            )
        }
        letters = []
        for partition in partitions:
            low, high = reader.get_watermark_offsets(TopicPartition(DEAD_LETTER_TOPIC, partition), timeout=10)
            if high <= low:
                continue
            reader.assign([TopicPartition(DEAD_LETTER_TOPIC, partition, low)])
            while True:
                message = reader.poll(5)
                if message is None or message.error():
                    break
                offset = message.offset() or 0
                letters.append(
                    DeadLetter(partition, offset, message.key(), message.value() or b"",
                               replayed=offset < replayed_up_to.get(partition, -1))
                )  # fmt: skip
                if offset >= high - 1:
                    break
        return letters
    finally:
        reader.close()
        replayer.close()


def replay(addresses: set[str] | None = None) -> list[DeadLetter]:
    """Republish pending dead letters onto order-events: all of them (and mark them replayed), or those at
    `addresses` ("partition:offset"; not marked, since others before them may still be pending)."""
    pending = [letter for letter in dead_letters() if not letter.replayed]
    chosen = [letter for letter in pending if addresses is None or letter.address in addresses]
    if not chosen:
        return []
    producer = Producer({"bootstrap.servers": BOOTSTRAP_SERVERS, "enable.idempotence": True, "log_level": 0})
    for letter in chosen:
        producer.produce(TARGET_TOPIC, key=letter.key, value=letter.value)
    if producer.flush(30) != 0:
        raise RuntimeError("the broker did not take every replayed message")
    if addresses is None:  # everything pending was replayed: move the group's position past it
        replayer = _consumer(REPLAY_GROUP)
        try:
            last = {letter.partition: letter.offset for letter in chosen}
            replayer.commit(
                offsets=[
                    TopicPartition(DEAD_LETTER_TOPIC, partition, offset + 1) for partition, offset in last.items()
                ],
                asynchronous=False,
            )
        finally:
            replayer.close()
    return chosen
