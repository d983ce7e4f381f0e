"""Everything one running carrier mock holds, bundled so that routes get it as one dependency."""

from __future__ import annotations

from dataclasses import dataclass

from shipping_mock.config import Settings
from shipping_mock.delivery import DeliveryReporter
from shipping_mock.faults import FaultInjector
from shipping_mock.store import RequestLog, ShipmentStore


@dataclass(frozen=True, slots=True)
class CarrierState:
    settings: Settings
    shipments: ShipmentStore
    request_log: RequestLog
    faults: FaultInjector
    deliveries: DeliveryReporter

    @classmethod
    def from_settings(cls, settings: Settings) -> CarrierState:
        return cls(
            settings=settings,
            shipments=ShipmentStore(),
            request_log=RequestLog(),
            faults=FaultInjector(settings.random_seed),
            deliveries=DeliveryReporter(settings),
        )
