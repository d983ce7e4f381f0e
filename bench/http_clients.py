"""Client-side CPU per HTTP request: httpx on its own transport (httpcore) against httpx on httpx-aiohttp's.

Fulfillment calls the carrier through its sidecar over HTTP, and the carrier mock sends its delivery reports the
same way; a profile (py-spy) put a quarter of the fulfillment app's CPU in httpx. This starts a small uvicorn app
(uvloop + httptools, as the services run) in a process of its own, sends it `--requests` POSTs with a
carrier-sized JSON body, `--concurrency` at a time, from one asyncio process per client, and reports the client
process's CPU time per request (the server's is the same for both and not counted). Repeats alternate the clients,
so a noisy machine shows as spread rather than as a difference.

    uv run python bench/http_clients.py --requests 3000 --repeats 3
"""

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvloop
from httpx_aiohttp import AiohttpTransport
from order_creation import machine

PORT = 8799
URL = f"http://127.0.0.1:{PORT}/shipments"
BODY = {
    "order_id": "0193a1f4-5f7e-7c2a-9d41-3c1e2b7a9f00",
    "recipient": {
        "name": "Jane Doe",
        "phone": "+44 20 7946 0000",
        "address": {"line1": "1 Example Street", "city": "London", "postal_code": "SW1A 1AA", "country": "GB"},
    },
    "items": [{"sku": "BOOK-123", "quantity": 2}],
}
SERVER = """
from fastapi import FastAPI
app = FastAPI()

@app.post("/shipments", status_code=201)
async def create(body: dict) -> dict:
    return {"shipment_id": "shp-1", "carrier": "Bench Parcel", "tracking_number": "T-1", "status": "created"}
"""
CLIENTS = ("httpx", "httpx-aiohttp")


async def cpu_ms_per_request(client_kind: str, requests: int, concurrency: int) -> float:
    transport = AiohttpTransport() if client_kind == "httpx-aiohttp" else None
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        slots = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with slots:
                response = await client.post(URL, json=BODY, headers={"Idempotency-Key": "bench"})
                response.raise_for_status()
                response.json()

        await asyncio.gather(*(one() for _ in range(200)))  # warm-up: connections open, code paths hot
        started = time.process_time()
        await asyncio.gather(*(one() for _ in range(requests)))
        return 1000 * (time.process_time() - started) / requests


def measure_in_own_process(client_kind: str, requests: int, concurrency: int) -> float:
    """In a fresh interpreter per run, so one client's imports and caches never flatter the other."""
    output = subprocess.run(
        [sys.executable, __file__, "--client", client_kind, "--requests", str(requests),
         "--concurrency", str(concurrency)],
        check=True, capture_output=True, text=True, cwd=Path(__file__).parent,
    ).stdout  # fmt: skip
    return float(output.strip())


def wait_for_port(server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the bench server exited with {server.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", PORT)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("the bench server did not listen within 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--client", choices=CLIENTS, help="(internal) measure one client in this process")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.client is not None:
        print(uvloop.run(cpu_ms_per_request(args.client, args.requests, args.concurrency)))
        return

    with tempfile.TemporaryDirectory() as app_dir:
        (Path(app_dir) / "bench_server.py").write_text(SERVER)
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "bench_server:app", "--host", "127.0.0.1",
             "--port", str(PORT), "--loop", "uvloop", "--http", "httptools", "--log-level", "warning"],
        )  # fmt: skip
        try:
            wait_for_port(server)
            results: dict[str, list[float]] = {kind: [] for kind in CLIENTS}
            for _ in range(args.repeats):
                for kind in CLIENTS:
                    results[kind].append(measure_in_own_process(kind, args.requests, args.concurrency))
        finally:
            os.kill(server.pid, signal.SIGTERM)
            server.wait(timeout=10)

    lines = [
        f"# Client CPU per HTTP request ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine()}. {args.requests} POSTs per run, {args.concurrency} at a time, {args.repeats} runs "
        "per client, alternating. Command: `uv run python bench/http_clients.py "
        f"--requests {args.requests} --repeats {args.repeats}`.",
        "",
        "| client | CPU per request (ms), each run | best |",
        "|---|---|---|",
        *(f"| {kind} | {', '.join(f'{value:.3f}' for value in values)} | {min(values):.3f} |"
          for kind, values in results.items()),
        "",
    ]  # fmt: skip
    report = "\n".join(lines)
    print(report)
    if args.output is not None:
        args.output.write_text(report)


if __name__ == "__main__":
    main()
