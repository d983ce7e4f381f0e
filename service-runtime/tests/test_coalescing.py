"""Coalescer: a call alone goes at once; calls that arrive during a batch go together in the next."""

import asyncio
from collections.abc import Sequence

import pytest
from service_runtime.coalescing import Coalescer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class GatedBatches:
    """A batch call that records each batch and, while `gate` is clear, waits for it: the batch is "with the
    sidecar" for as long as the test wants."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()

    async def __call__(self, items: list[str]) -> list[str | Exception]:
        self.batches.append(items)
        self.started.set()
        await self.gate.wait()
        return [ValueError(item) if item.startswith("bad") else item.upper() for item in items]


async def a_batch_with_the_sidecar(
    batches: GatedBatches, coalescer: Coalescer[str, str], item: str
) -> "asyncio.Task[str]":
    """Submit `item` and return once its batch has started and is held (until `batches.gate` is set)."""
    batches.gate.clear()
    submitted = asyncio.create_task(coalescer.submit(item))
    await batches.started.wait()
    return submitted


async def test_a_call_that_finds_it_idle_goes_alone_and_at_once() -> None:
    batches = GatedBatches()
    coalescer = Coalescer(batches, max_batch=10, name="test")

    assert await coalescer.submit("a") == "A"
    assert batches.batches == [["a"]]


async def test_calls_that_arrive_while_a_batch_runs_go_together_in_the_next_each_with_its_own_answer() -> None:
    batches = GatedBatches()
    coalescer = Coalescer(batches, max_batch=10, name="test")
    first = await a_batch_with_the_sidecar(batches, coalescer, "a")
    later = [asyncio.create_task(coalescer.submit(item)) for item in ("b", "bad-c", "d")]
    await asyncio.sleep(0)  # let them queue (a yield to the loop, not a wait for time)
    batches.gate.set()

    assert await first == "A"
    answers = await asyncio.gather(*later, return_exceptions=True)
    assert batches.batches == [["a"], ["b", "bad-c", "d"]]
    assert (answers[0], answers[2]) == ("B", "D")
    assert isinstance(answers[1], ValueError)
    assert str(answers[1]) == "bad-c"


async def test_a_batch_holds_at_most_max_batch_calls_in_arrival_order() -> None:
    batches = GatedBatches()
    batches.gate.clear()
    coalescer = Coalescer(batches, max_batch=2, name="test")
    calls = [asyncio.create_task(coalescer.submit(item)) for item in "abcde"]
    await batches.started.wait()
    batches.gate.set()

    assert await asyncio.gather(*calls) == ["A", "B", "C", "D", "E"]
    assert batches.batches == [["a", "b"], ["c", "d"], ["e"]]


async def test_calls_with_the_same_key_never_share_a_batch_and_keep_their_order() -> None:
    batches = GatedBatches()
    batches.gate.clear()
    coalescer = Coalescer(batches, max_batch=10, name="test", key=lambda item: item[0])
    calls = [asyncio.create_task(coalescer.submit(item)) for item in ("x0", "x1", "y0", "x2", "y1")]
    await batches.started.wait()
    batches.gate.set()

    await asyncio.gather(*calls)
    assert batches.batches == [["x0", "y0"], ["x1", "y1"], ["x2"]]


async def test_a_batch_that_fails_fails_each_of_its_calls_and_the_next_batch_still_runs() -> None:
    failing = True

    async def run_batch(items: list[str]) -> Sequence[str | Exception]:
        await asyncio.sleep(0)
        if failing:
            raise ConnectionError("sidecar gone")
        return items

    coalescer = Coalescer(run_batch, max_batch=10, name="test")
    calls = [asyncio.create_task(coalescer.submit(item)) for item in "ab"]
    answers = await asyncio.gather(*calls, return_exceptions=True)
    failing = False

    assert all(isinstance(answer, ConnectionError) for answer in answers)
    assert await coalescer.submit("c") == "c"


async def test_a_caller_that_stops_waiting_leaves_the_others_answered() -> None:
    batches = GatedBatches()
    coalescer = Coalescer(batches, max_batch=10, name="test")
    first = await a_batch_with_the_sidecar(batches, coalescer, "a")
    gone, stays = asyncio.create_task(coalescer.submit("b")), asyncio.create_task(coalescer.submit("c"))
    await asyncio.sleep(0)
    gone.cancel()
    batches.gate.set()

    assert (await first, await stays) == ("A", "C")
    assert gone.cancelled()
    assert batches.batches == [["a"], ["b", "c"]]
