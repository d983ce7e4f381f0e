"""Conflicts are recognised by the message the SDK keeps of the sidecar's answer (its gRPC code is gone)."""

from dapr.clients.exceptions import DaprInternalError
from service_runtime.dapr_state import is_etag_mismatch


def test_a_first_write_or_etag_conflict_is_recognised() -> None:
    conflict = DaprInternalError(
        "failed saving state in state store order-store: possible etag mismatch. error from state store: ..."
    )

    assert is_etag_mismatch(conflict)


def test_any_other_sidecar_error_is_not_a_conflict() -> None:
    assert not is_etag_mismatch(DaprInternalError("state store order-store is not found"))
