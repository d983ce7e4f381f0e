"""`ports_in_use` answers "could the stack bind this port now?", the question `make up` and the launcher tests ask."""

import socket

from devstack.layout import LOOPBACK
from devstack.stack import ports_in_use


def _listener() -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((LOOPBACK, 0))
    server.listen()
    return server


def test_a_port_with_a_listener_is_in_use() -> None:
    with _listener() as server:
        port = server.getsockname()[1]

        assert ports_in_use([port]) == [port]


def test_a_port_whose_server_stopped_is_free_even_with_its_connections_in_time_wait() -> None:
    with _listener() as server:
        port = server.getsockname()[1]
        client = socket.create_connection((LOOPBACK, port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first, so its end (on `port`) goes to TIME_WAIT
        client.close()

    assert ports_in_use([port]) == []
