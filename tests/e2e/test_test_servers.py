"""The servers tests start in processes of their own keep to ports of their own: one
that finds its port taken by another process (here, this test) starts on another,
and never mistakes the other process's answers for its own."""

import socket
from collections.abc import Iterator

import pytest

from tests.support import redis_server, server_process
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.server_process import running_server, server_env

pytestmark = pytest.mark.integration


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def first_the(port: int):
    """A free_port that hands out ``port`` first, then free ones."""
    ports = iter([port])
    return lambda: next(ports, None) or free_port()


def test_a_redis_server_whose_port_was_taken_starts_on_another(taken_port, monkeypatch):
    monkeypatch.setattr(redis_server, "free_port", first_the(taken_port))
    with RedisServer() as server:
        assert server.port != taken_port
        assert redis_server._pid_on(server.port) == server._process.pid
        server.stop()
        server.start()  # a restart stays on the port the clients know
        assert redis_server._pid_on(server.port) == server._process.pid


def test_a_redis_server_given_another_redis_servers_port_says_so(private_redis):
    server = RedisServer(private_redis.port)  # that Redis answers there, not this one
    try:
        with pytest.raises(RuntimeError, match=f"did not start on port {private_redis.port}"):
            server.start()
    finally:
        server.cleanup()


async def test_a_server_whose_port_was_taken_starts_on_another(
    database_url, gecko, tmp_path, taken_port, monkeypatch
):
    monkeypatch.setattr(server_process, "free_port", first_the(taken_port))
    env = server_env(database_url, gecko.base_url, tmp_path, PRICE_POLLER_ENABLED="false")
    async with running_server(env, tmp_path / "server.log") as server:
        assert server.port != taken_port
        assert server.listening()
        await server.wait_ready()
        assert await server.stop() == 0
