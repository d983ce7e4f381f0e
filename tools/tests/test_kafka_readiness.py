"""Which Kafka admin errors mean "the broker is up, its group coordinator is not ready yet: ask again"."""

import pytest
from confluent_kafka import KafkaError, KafkaException
from devstack.kafka import _coordinator_not_ready


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError._TIMED_OUT,  # a fresh broker creating __consumer_offsets on busy cores
    ],
)
def test_a_coordinator_still_loading_is_asked_again(code: int) -> None:
    assert _coordinator_not_ready(KafkaException(KafkaError(code)))


def test_an_unknown_group_or_a_refusal_is_not_waited_out() -> None:
    assert not _coordinator_not_ready(KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED)))
