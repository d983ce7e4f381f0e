"""Dead letters: list what landed in the dead-letter topics, and replay each onto the topic it came from.

Each subscription has a dead-letter topic: the subscriber's sidecar moves there a message its app refused (DROP) or
that it could not deliver. Replaying republishes a dead letter onto its source topic with its key and value
unchanged; which dead letters were replayed is remembered as the committed offsets of the Kafka consumer group
`dead-letter-replay`, so `replay` never sends one twice.

A dead letter's address is `topic:partition:offset`; `partition:offset` (the form from when there was one
dead-letter topic) still means one in order-events-dlq.
"""

import json
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition

from devstack.kafka import BOOTSTRAP_SERVERS

SOURCE_TOPICS = {"order-events-dlq": "order-events", "fulfillment-events-dlq": "fulfillment-events"}
"""Each dead-letter topic, with the topic its letters came from and are replayed onto."""
DEFAULT_DEAD_LETTER_TOPIC = "order-events-dlq"
"""The topic of an address given as `partition:offset`."""
REPLAY_GROUP = "dead-letter-replay"


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    replayed: bool

    @property
    def address(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    def summary(self) -> str:
        try:
            event = json.loads(self.value)
            what = f"{event.get('type')} id={event.get('id')} subject={event.get('subject')}"
        except ValueError:
            what = f"(not JSON) {self.value[:60]!r}"
        key = self.key.decode(errors="replace") if self.key else "-"
        return f"{self.address:<32} {'replayed' if self.replayed else 'pending ':<8} key={key:<38} {what}"


def full_address(address: str) -> str:
    """`topic:partition:offset` as given, or `partition:offset` read as an address in order-events-dlq."""
    return address if address.count(":") == 2 else f"{DEFAULT_DEAD_LETTER_TOPIC}:{address}"


def _consumer(group: str) -> Consumer:
    return Consumer(
        {"bootstrap.servers": BOOTSTRAP_SERVERS, "group.id": group, "enable.auto.commit": False, "log_level": 0}
    )


def dead_letters() -> list[DeadLetter]:
    """Every message in the dead-letter topics, each marked replayed or not."""
    reader = _consumer(f"dead-letter-reader-{uuid.uuid4()}")
    replayer = _consumer(REPLAY_GROUP)
    try:
        return [letter for topic in SOURCE_TOPICS for letter in _dead_letters_in(topic, reader, replayer)]
    finally:
        reader.close()
        replayer.close()


def _dead_letters_in(topic: str, reader: Consumer, replayer: Consumer) -> list[DeadLetter]:
    partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
    replayed_up_to = {
        position.partition: position.offset
        for position in replayer.committed([TopicPartition(topic, partition) for partition in partitions], timeout=10)
    }
    letters = []
    for partition in partitions:
        low, high = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high <= low:
            continue
        reader.assign([TopicPartition(topic, partition, low)])
        while True:
            message = reader.poll(5)
            if message is None or message.error():
                break
            offset = message.offset() or 0
            letters.append(
                DeadLetter(topic, partition, offset, message.key(), message.value() or b"",
                           replayed=offset < replayed_up_to.get(partition, -1))
            )  # fmt: skip
            if offset >= high - 1:
                break
    return letters


def replay(addresses: set[str] | None = None) -> list[DeadLetter]:
    """Republish pending dead letters, each onto the topic it came from: all of them (and mark them replayed), or
    those at `addresses` (see `full_address`; not marked, since others before them may still be pending)."""
    wanted = None if addresses is None else {full_address(address) for address in addresses}
    pending = [letter for letter in dead_letters() if not letter.replayed]
    chosen = [letter for letter in pending if wanted is None or letter.address in wanted]
    if not chosen:
        return []
    producer = Producer({"bootstrap.servers": BOOTSTRAP_SERVERS, "enable.idempotence": True, "log_level": 0})
    for letter in chosen:
        producer.produce(SOURCE_TOPICS[letter.topic], key=letter.key, value=letter.value)
    if producer.flush(30) != 0:
        raise RuntimeError("the broker did not take every replayed message")
    if addresses is None:  # everything pending was replayed: move the group's position past it
        replayer = _consumer(REPLAY_GROUP)
        try:
            last = {(letter.topic, letter.partition): letter.offset for letter in chosen}
            replayer.commit(
                offsets=[TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()],
                asynchronous=False,
            )
        finally:
            replayer.close()
    return chosen
