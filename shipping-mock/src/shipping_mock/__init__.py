"""Shipping mock: a believable third-party carrier ("Acme Parcel") for tests and local runs.

Carrier API: ``POST /shipments`` (``Idempotency-Key`` required), ``GET /shipments/{id}``,
``POST /shipments/{id}/cancel``. Admin API (never faulty): ``/admin/faults``,
``/admin/shipments``, ``/admin/requests``. ``GET /healthz``.

Rejection rule (422 ``address-rejected`` with a ``reason``, permanent and remembered per key):
``country`` in ``KP``/``IR``/``SY`` -> ``embargoed_destination``; ``postal_code`` starting with
``REJECT`` -> ``undeliverable_address``; and the ``reject_rate`` fault -> ``address_not_serviceable``.
See ``shipping_mock.address_policy``, and ``shipping_mock.api.carrier`` for the fault semantics.

Limitation: all state is in process memory (a mock); a restart forgets every shipment and key.
"""
