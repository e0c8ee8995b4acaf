"""Tortoise ORM configuration, for the app and for the aerich CLI.

``tortoise_config(url, timeout)`` builds the config the app and the tests use: every
database operation of the app ends within ``timeout`` seconds (DATABASE_TIMEOUT_SECONDS;
see ``engine.py``). The module-level ``TORTOISE_ORM`` is what ``aerich.ini`` points at:
it reads ``DATABASE_URL`` from the environment when aerich imports this module, and sets
no such deadline (a migration may take long).

Connection pool: each server process holds its own asyncpg pool of
``minsize``..``maxsize`` connections (defaults 1 and 10 here; Tortoise's own default
maximum is 5). Override them in the URL query: ``...?minsize=2&maxsize=20``. A process
opens up to ``connections_per_process(url)`` = ``maxsize`` + ``DEDICATED_CONNECTIONS``
(k8s/README.md sizes a deployment's ``max_connections`` from it).
"""

from __future__ import annotations

import os
from typing import Any

from tortoise.backends.base.config_generator import expand_db_url

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crypto_prices"
ENGINE = "infrastructure.db.engine"
APP_LABEL = "models"
CONNECTION = "default"
MODEL_MODULES = ("infrastructure.db.models", "aerich.models")

# asyncpg options applied unless the URL sets them: pool bounds, a connect timeout and
# a per-statement timeout (seconds), so a stuck database fails a request instead of
# hanging it. With an operation timeout, the connect timeout is that one, and the
# statement timeout stays as a bound for work that sets a longer deadline (the poller).
POOL_DEFAULTS: dict[str, Any] = {
    "minsize": 1,
    "maxsize": 10,
    "timeout": 10.0,
    "command_timeout": 30.0,
}
# Connections a server process holds beside its pool, one each: its read model's LISTEN
# connection (read_model/live.py, on LISTEN_DATABASE_URL when set) and the poller's
# leader lock (db/leader_lock.py: held by the leader, opened for a moment at each try
# by the others).
DEDICATED_CONNECTIONS = 2


def tortoise_config(database_url: str, timeout: float | None = None) -> dict[str, Any]:
    """The Tortoise config for one PostgreSQL database (``postgres://`` URL). With
    ``timeout``, each database operation (a pooled connection, its statements, giving
    it back) ends within that many seconds, else fails with ``StorageUnavailable``."""
    connection = expand_db_url(database_url)
    connection["engine"] = ENGINE
    credentials = connection["credentials"]
    defaults = dict(POOL_DEFAULTS)
    if timeout is not None:
        credentials["operation_timeout"] = timeout
        defaults["timeout"] = timeout
        defaults["command_timeout"] = max(timeout, POOL_DEFAULTS["command_timeout"])
    for key, value in defaults.items():
        # Values from the URL query arrive as strings; asyncpg wants numbers.
        credentials[key] = type(value)(credentials.get(key, value))
    return {
        "connections": {CONNECTION: connection},
        "apps": {
            APP_LABEL: {"models": list(MODEL_MODULES), "default_connection": CONNECTION},
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def pool_maxsize(database_url: str) -> int:
    """The most connections the pool of a process on ``database_url`` opens."""
    return int(tortoise_config(database_url)["connections"][CONNECTION]["credentials"]["maxsize"])


def connections_per_process(database_url: str) -> int:
    """The most PostgreSQL connections one server process on ``database_url`` opens."""
    return pool_maxsize(database_url) + DEDICATED_CONNECTIONS


TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)


def connect_kwargs(database_url: str) -> dict[str, Any]:
    """``asyncpg.connect`` keyword arguments for the same database, for work that
    needs one dedicated connection outside Tortoise's pool (locks, admin tasks)."""
    credentials = expand_db_url(database_url)["credentials"]
    return {
        "host": credentials.get("host"),
        "port": int(credentials.get("port") or 5432),
        "user": credentials.get("user"),
        "password": credentials.get("password"),
        "database": credentials.get("database"),
        "timeout": float(credentials.get("timeout") or POOL_DEFAULTS["timeout"]),
        **({"ssl": credentials["ssl"]} if "ssl" in credentials else {}),
    }
