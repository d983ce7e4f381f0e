"""The Dapr state API as both services use it: insert-if-absent, reading the SDK's conflict errors, transactions
that may insert, and the start-up check that the configured store rolls a failed transaction back."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._state import Concurrency, Consistency, StateOptions

INSERT_IF_ABSENT = StateOptions(concurrency=Concurrency.first_write, consistency=Consistency.strong)
"""First-write without an ETag: an insert that fails if the key exists (SQLite, PostgreSQL)."""


@dataclass(frozen=True)
class StateWrite:
    """One upsert in a transaction sent by `write_atomically`."""

    key: str
    value: str
    """JSON text."""
    etag: str | None = None
    """Write only over this version of the key."""
    insert_only: bool = False
    """Write only if the key does not exist (first-write without an ETag)."""


@dataclass(frozen=True)
class StateDelete:
    """One delete in a transaction sent by `write_atomically` or built by `as_operations`."""

    key: str
    etag: str | None = None
    """Delete only this version of the key."""


class TransactionRefusedError(RuntimeError):
    """The sidecar refused a transaction; nothing of it was written (on a store that passes
    `check_transactions_roll_back`). An ETag or insert-only conflict is one cause, so callers re-read to decide."""


class StateStoreUnfitError(RuntimeError):
    """The configured state store lacks a guarantee the service relies on; the message says which."""


def is_etag_mismatch(error: DaprInternalError) -> bool:
    """The SDK's save_state turns the sidecar's gRPC status into this error, keeping only the message, which for an
    ETag conflict (and SQLite's first-write conflict) reads "failed saving state in state store ...: possible etag
    mismatch"."""
    return "etag mismatch" in str(error).lower()


async def insert_if_absent(
    client: DaprClient, store: str, key: str, value: str, *, metadata: dict[str, str] | None = None
) -> bool:
    """Store `value` under `key` unless the key exists; True if it was stored.

    A refused first-write is told by the key being there, not by the error's words: they differ by store (SQLite:
    "possible etag mismatch"; PostgreSQL: "no item was updated"), and the SDK keeps nothing else of the answer.
    """
    try:
        await client.save_state(store, key, value, options=INSERT_IF_ABSENT, state_metadata=metadata)
    except DaprInternalError as error:
        if is_etag_mismatch(error):
            return False
        existing = await client.get_state(store, key)
        if existing.data:
            return False
        raise
    return True


def as_operations(writes: Sequence[StateWrite | StateDelete]) -> list[TransactionalStateOperation]:
    """The SDK's transactional operations for `writes`; ValueError for an insert-only write, which they cannot
    carry (`write_atomically` can)."""
    operations = []
    for write in writes:
        if isinstance(write, StateDelete):
            operations.append(TransactionalStateOperation(write.key, "", write.etag, TransactionOperationType.delete))
        elif write.insert_only:
            raise ValueError(f"an insert-only write of {write.key} needs write_atomically")
        else:
            operations.append(TransactionalStateOperation(write.key, write.value, write.etag))
    return operations


async def write_atomically(
    http: httpx.AsyncClient, sidecar_url: str, store: str, writes: Sequence[StateWrite | StateDelete]
) -> None:
    """Apply `writes` in one state transaction, through the sidecar's HTTP API (`http`'s timeouts apply).

    Not through the SDK's `execute_state_transaction`: its operations cannot carry first-write concurrency, so a
    transaction could not insert a record only if it is new (the sidecar and the SQLite and PostgreSQL stores
    honour it in a transaction, tests/integration/test_state_stores.py); over HTTP the operation carries it.
    """
    body = '{"operations": [' + ", ".join(_operation(write) for write in writes) + "]}"
    response = await http.post(
        f"{sidecar_url}/v1.0/state/{store}/transaction", content=body, headers={"content-type": "application/json"}
    )
    if not response.is_success:
        raise TransactionRefusedError(f"state transaction on {store}: {response.status_code} {response.text}")


def _operation(write: StateWrite | StateDelete) -> str:
    """One operation of the transaction's JSON body, an upsert's value embedded as the JSON text it is (parsing it
    only to serialise it again cost the busy fulfillment service measurable CPU per write)."""
    request: dict[str, object] = {"key": write.key}
    if isinstance(write, StateDelete):
        if write.etag is not None:
            request["etag"] = write.etag
        return json.dumps({"operation": "delete", "request": request})
    if write.etag is not None:
        request["etag"] = write.etag
    if write.insert_only:
        request["options"] = {"concurrency": "first-write", "consistency": "strong"}
    return f'{{"operation": "upsert", "request": {json.dumps(request)[:-1]}, "value": {write.value}}}}}'


async def check_transactions_roll_back(client: DaprClient, store: str) -> None:
    """StateStoreUnfitError unless a transaction in which one ETag check fails leaves nothing behind.

    The outbox (order service) and the work index (fulfillment) write a record and an index shard in one transaction
    and count on a conflict on the shard undoing the record. Dapr's Redis store, for one, applies the rest of such a
    transaction (it has no rollback), so a service swapped onto it by editing YAML must refuse to start, not run
    with a broken guarantee. Costs six state calls at start-up; leaves no keys behind.
    """
    run = uuid.uuid4().hex
    probe, guard = f"rollback-probe|{run}", f"rollback-guard|{run}"
    await client.save_state(store, guard, "first")
    stale_etag = (await client.get_state(store, guard)).etag
    await client.save_state(store, guard, "second")
    try:
        operations = [
            TransactionalStateOperation(probe, "must not be kept"),
            TransactionalStateOperation(guard, "third", etag=stale_etag),
        ]
        try:
            await client.execute_state_transaction(store, operations)
        except Exception:  # the SDK raises bare gRPC errors here; the refusal is what was asked for
            kept = (await client.get_state(store, probe)).data
        else:
            raise StateStoreUnfitError(f"state store {store} accepted a transaction with a stale ETag")
        if kept:
            raise StateStoreUnfitError(
                f"state store {store} kept part of a transaction that failed (no rollback): the outbox and the work "
                "index need all-or-nothing transactions (README, 'State stores')"
            )
    finally:
        await client.execute_state_transaction(
            store,
            [
                TransactionalStateOperation(key, "", operation_type=TransactionOperationType.delete)
                for key in (probe, guard)
            ],
        )
