"""Calls to the sidecar that arrive together go together: one bulk call carries many.

A `Coalescer` runs one batch at a time. A call that finds it idle goes at once, alone, so nothing ever waits for
a timer; the calls that arrive while a batch is with the sidecar queue, and the next batch takes them all (at most
`max_batch`). Under load the batches grow by themselves, each costing one round trip instead of one per call.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class _Queued(Generic[Item, Result]):
    item: Item
    answer: "asyncio.Future[Result]"


class Coalescer(Generic[Item, Result]):
    def __init__(
        self,
        run_batch: Callable[[list[Item]], Awaitable[Sequence[Result | Exception]]],
        *,
        max_batch: int,
        name: str,
        key: Callable[[Item], Hashable] | None = None,
    ) -> None:
        """`run_batch` answers a batch, item by item in its order: a result, or the exception that item's caller
        gets; if it raises, every caller of the batch gets that error. `key`: items with the same key never share
        a batch (the later waits for the next), for calls whose effects must stay in the order they were made."""
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._name = name
        self._key = key
        self._queued: list[_Queued[Item, Result]] = []
        self._running: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """The item's answer, once a batch has carried it. A caller cancelled while it waits cancels only its
        wait: its item may still be carried."""
        queued: _Queued[Item, Result] = _Queued(item, asyncio.get_running_loop().create_future())
        self._queued.append(queued)
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run_queued(), name=self._name)
        return await queued.answer

    async def _run_queued(self) -> None:
        while self._queued:
            batch = self._next_batch()
            try:
                answers = await self._run_batch([queued.item for queued in batch])
            except Exception as error:
                answers = [error] * len(batch)
            for queued, answer in zip(batch, answers, strict=True):
                if queued.answer.done():  # its caller stopped waiting
                    continue
                if isinstance(answer, Exception):
                    queued.answer.set_exception(answer)
                else:
                    queued.answer.set_result(answer)

    def _next_batch(self) -> list[_Queued[Item, Result]]:
        batch: list[_Queued[Item, Result]] = []
        held: list[_Queued[Item, Result]] = []
        keys: set[Hashable] = set()
        for queued in self._queued:
            key = self._key(queued.item) if self._key is not None else None
            if len(batch) == self._max_batch or (key is not None and key in keys):
                held.append(queued)
                continue
            keys.add(key)
            batch.append(queued)
        self._queued = held
        return batch
