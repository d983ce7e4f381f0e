"""`devstack up | down | install | dead-letters | replay-dead-letters`: what `make up`, `make down`, `make install`,
`make dead-letters` and `make replay-dead-letters` run."""

import argparse
import signal
import sys
import time
from datetime import datetime
from types import FrameType

from devstack import dead_letters
from devstack.layout import APPS, Layout
from devstack.processes import StartupError, stop_recorded
from devstack.stack import Stack, install
from devstack.state_stores import DEFAULT_STATE_STORE, STATE_STORE_KINDS, StateStoreKind


def progress(message: str) -> None:
    print(f"[devstack {datetime.now():%H:%M:%S}] {message}", flush=True)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def up(layout: Layout, state_store: StateStoreKind) -> int:
    # Ctrl-C stops the stack, even when started from a shell that ignores SIGINT for background jobs (Python then
    # leaves SIGINT ignored); `kill` (SIGTERM) stops it as cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()
    install(layout, progress, state_store)
    stack = Stack(layout, progress, state_store)
    try:
        stack.start()
    except StartupError as error:
        progress(f"start-up failed: {error}")
        return 1
    except KeyboardInterrupt:
        progress("interrupted during start-up; stopped")
        return 130
    progress(
        f"stack ready in {time.monotonic() - started:.1f} s (state store: {state_store}); logs in {layout.logs_dir}"
    )
    for app in APPS:
        print(
            f"  {app.app_id:<20} http://127.0.0.1:{app.app_port}   "
            f"via Dapr: http://127.0.0.1:{app.dapr_http_port}/v1.0/invoke/{app.app_id}/method/"
        )
    print("  Order API docs       http://127.0.0.1:8000/docs")
    print(f"  Calls to a sidecar's API need the header dapr-api-token: DAPR_API_TOKEN in {layout.secrets_file}")
    print("Ctrl-C stops everything.", flush=True)

    exit_code = 1
    try:
        while all(process.alive() for process in stack.processes):
            time.sleep(0.5)
        progress("a process of the stack exited; stopping the rest")
    except KeyboardInterrupt:
        progress("stopping")
        exit_code = 0
    finally:
        stack.stop()
        progress("stopped")
    return exit_code


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "install", "dead-letters", "replay-dead-letters"])
    parser.add_argument(
        "addresses",
        nargs="*",
        help="replay-dead-letters: topic:partition:offset of each to replay, or partition:offset for one in "
        "order-events-dlq (default: all pending)",
    )
    parser.add_argument(
        "--state-store",
        choices=STATE_STORE_KINDS,
        default=DEFAULT_STATE_STORE,
        help="up: where the apps keep their state (components/statestore-*.yaml, or components/alternates/<store>/)",
    )
    arguments = parser.parse_args()
    command = arguments.command
    if command == "dead-letters":
        for letter in dead_letters.dead_letters():
            print(letter.summary())
        return
    if command == "replay-dead-letters":
        replayed = dead_letters.replay(set(arguments.addresses) or None)
        progress(
            f"replayed {len(replayed)} dead letter(s) onto the topics they came from: "
            f"{[letter.address for letter in replayed]}"
        )
        return
    layout = Layout.discover()
    if command == "install":
        install(layout, progress)
    elif command == "up":
        sys.exit(up(layout, arguments.state_store))
    else:
        stopped = stop_recorded(layout.pids_dir)
        progress(f"stopped: {', '.join(stopped) or 'nothing was running'}")
