"""What the drills share: app instances they start by hand, and the stack's apps put back afterwards."""

from collections.abc import Iterator

import pytest
from devstack.layout import Layout
from devstack.stack import Stack, ports_in_use

from tests.support.instances import FULFILLMENT, ORDER_SERVICE, Instances


@pytest.fixture
def instances(stack: Stack, layout: Layout) -> Iterator[Instances]:
    """Instances a drill starts (stopped after it). An app of dapr.yaml the drill killed is started again, as
    `dapr run` had it, and stopped with the stack, so the drills after it find the whole system."""
    started = Instances(layout)
    try:
        yield started
    finally:
        started.stop_all()
        restored = Instances(layout)
        if ports_in_use([ORDER_SERVICE.app]) == []:
            stack.processes.append(
                restored.app("order-service-restored", "order_service", "order-service", ORDER_SERVICE)
            )
        if ports_in_use([FULFILLMENT.app]) == []:
            stack.processes.append(restored.fulfillment("fulfillment-service-restored"))
