"""What anyone else on the machine's network, or on the machine without the stack's secrets, can reach: nothing
but 127.0.0.1 listeners, and behind each sidecar's API the Dapr API token (README, "Security")."""

import ipaddress

import httpx
import psutil
import pytest
from devstack.layout import APPS, LOOPBACK, App
from devstack.stack import Stack

from tests.support.fulfillment import sidecar_headers


def stack_processes(stack: Stack) -> list[psutil.Process]:
    """Every process the stack started, with everything they started (the CLI's daprd and apps, uv's pythons)."""
    found = []
    for managed in stack.processes:
        leader = psutil.Process(managed.pid)
        found += [leader, *leader.children(recursive=True)]
    return found


def on_loopback(ip: str) -> bool:
    """127.0.0.1, also as Java's IPv4-mapped form (::ffff:127.0.0.1) of a socket bound to it."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address) == LOOPBACK


def test_every_socket_the_stack_listens_on_is_bound_to_loopback(stack: Stack) -> None:
    listening: dict[str, list[str]] = {}
    for process in stack_processes(stack):
        for socket in process.net_connections(kind="inet"):
            is_tcp_listener = socket.status == psutil.CONN_LISTEN
            is_udp_socket = socket.status == psutil.CONN_NONE and not socket.raddr
            if is_tcp_listener or is_udp_socket:
                listening.setdefault(process.name(), []).append(f"{socket.laddr.ip} port {socket.laddr.port}")

    assert len(listening.get("daprd", [])) >= 3 * 4  # HTTP API, gRPC API, internal gRPC, metrics: per sidecar
    assert any(name.startswith("java") for name in listening)  # Kafka
    assert len(listening.get("python", [])) >= 3  # the apps (uvicorn)
    elsewhere = {
        name: [address for address in addresses if not on_loopback(address.partition(" ")[0])]
        for name, addresses in listening.items()
    }
    assert {name: addresses for name, addresses in elsewhere.items() if addresses} == {}


@pytest.mark.parametrize("app", APPS, ids=lambda app: app.app_id)
def test_a_sidecar_refuses_every_call_without_the_dapr_api_token_but_its_health_check(stack: Stack, app: App) -> None:
    sidecar = f"http://{LOOPBACK}:{app.dapr_http_port}/v1.0"

    assert httpx.get(f"{sidecar}/metadata", timeout=5).status_code == 401
    assert httpx.get(f"{sidecar}/metadata", headers={"dapr-api-token": "guessed"}, timeout=5).status_code == 401
    assert httpx.post(f"{sidecar}/shutdown", timeout=5).status_code == 401
    assert httpx.get(f"{sidecar}/metadata", headers=sidecar_headers(), timeout=5).status_code == 200
    assert httpx.get(f"{sidecar}/healthz", timeout=5).status_code == 204


def test_without_the_token_nothing_is_stored_published_or_invoked(stack: Stack) -> None:
    sidecar = f"http://{LOOPBACK}:3500/v1.0"
    key = "lockdown-probe"

    stored = httpx.post(f"{sidecar}/state/order-store", json=[{"key": key, "value": "forged"}], timeout=5)
    published = httpx.post(f"{sidecar}/publish/order-pubsub/order-events", json={"forged": True}, timeout=5)
    invoked = httpx.get(f"{sidecar}/invoke/order-service/method/dapr/subscribe", timeout=5)

    assert [stored.status_code, published.status_code, invoked.status_code] == [401, 401, 401]
    read_back = httpx.get(f"{sidecar}/state/order-store/{key}", headers=sidecar_headers(), timeout=5)
    assert read_back.status_code == 204  # nothing under the key


def test_no_sidecar_reaches_another_apps_sidecar(stack: Stack) -> None:
    """Name resolution points every app id at a port nothing listens on (components/config.yaml): an app is invoked
    through its own sidecar only, so another app's event routes cannot be reached from a sidecar of ours."""
    fulfillment_sidecar = f"http://{LOOPBACK}:3501/v1.0"

    invoked = httpx.get(
        f"{fulfillment_sidecar}/invoke/order-service/method/healthz", headers=sidecar_headers(), timeout=30
    )

    assert invoked.status_code == 500
    assert "ERR_DIRECT_INVOKE" in invoked.text
