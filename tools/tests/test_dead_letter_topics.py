"""The launcher's topics and the dead-letter tooling agree: every subscribed topic has a dead-letter topic that
`make dead-letters` reads and `make replay-dead-letters` replays back onto it, and the launcher creates them all."""

from devstack.dead_letters import SOURCE_TOPICS, DeadLetter, full_address
from devstack.kafka import TOPIC_CONFIGS, TOPICS
from devstack.stack import SUBSCRIBER_GROUPS


def test_every_subscribed_topic_is_the_source_of_a_dead_letter_topic() -> None:
    assert set(SUBSCRIBER_GROUPS.values()) == set(SOURCE_TOPICS.values())


def test_each_app_subscribes_to_a_topic_of_its_own() -> None:
    assert len(set(SUBSCRIBER_GROUPS.values())) == len(SUBSCRIBER_GROUPS)


def test_the_launcher_creates_every_topic_and_dead_letter_topic() -> None:
    assert set(SOURCE_TOPICS) | set(SOURCE_TOPICS.values()) == set(TOPICS)


def test_every_dead_letter_topic_keeps_its_letters_until_they_are_deleted() -> None:
    for topic in SOURCE_TOPICS:
        assert TOPIC_CONFIGS[topic]["retention.ms"] == "-1", topic


def test_a_dead_letter_is_addressed_by_its_topic_partition_and_offset() -> None:
    letter = DeadLetter("fulfillment-events-dlq", 2, 14, key=b"order-1", value=b"{}", replayed=False)

    assert letter.address == "fulfillment-events-dlq:2:14"
    assert full_address(letter.address) == letter.address


def test_an_address_without_a_topic_is_one_in_order_events_dlq() -> None:
    assert full_address("2:14") == "order-events-dlq:2:14"
