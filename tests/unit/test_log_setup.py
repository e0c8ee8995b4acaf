"""Log lines in both formats, Sanic's included, with the request id when there is one."""

import json
import logging

import pytest

from infrastructure.log_setup import REQUEST_ID, StderrHandler, configure_logging
from infrastructure.settings import Settings


@pytest.fixture
def configure(capsys):
    def apply(**env: str) -> None:
        configure_logging(Settings.from_env(env))

    yield apply
    configure_logging(Settings.from_env({}))


def lines(capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_json_lines_carry_the_fields_and_the_request_id(configure, capsys):
    configure(LOG_FORMAT="json")
    logging.getLogger("application.thing").info("hello %s", "there")
    token = REQUEST_ID.set("abc-123")
    try:
        logging.getLogger("sanic.error").error("with an id", extra={"status": 500})
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("interfaces.http.errors").exception("failed")
    finally:
        REQUEST_ID.reset(token)
    first, second, third = (json.loads(line) for line in lines(capsys))
    assert {k: first[k] for k in ("level", "logger", "message")} == {
        "level": "INFO",
        "logger": "application.thing",
        "message": "hello there",
    }
    assert first["time"].endswith("+00:00") and "request_id" not in first
    assert (second["logger"], second["request_id"], second["status"]) == (
        "sanic.error",
        "abc-123",
        500,
    )
    assert third["request_id"] == "abc-123" and "ValueError: boom" in third["exc_info"]


def test_text_stays_the_default(configure, capsys):
    configure()
    logging.getLogger("bootstrap").warning("plain")
    token = REQUEST_ID.set("r-1")
    logging.getLogger("bootstrap").warning("in a request")
    REQUEST_ID.reset(token)
    plain, in_request = lines(capsys)
    assert plain.endswith(" WARNING bootstrap: plain")
    assert in_request.endswith(" WARNING bootstrap: in a request [request_id=r-1]")


def test_levels_ours_and_sanics_at_log_level_others_from_warning(configure, capsys):
    configure(LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    logging.getLogger("infrastructure.x").debug("ours")
    logging.getLogger("sanic.server").debug("sanic's")
    logging.getLogger("tortoise").info("a library's info")
    logging.getLogger("asyncio").warning("a library's warning")
    logging.getLogger("sanic.access").info("sanic's access line")
    got = [json.loads(line)["message"] for line in lines(capsys)]
    assert got == ["ours", "sanic's", "a library's warning"]


def test_configuring_again_replaces_the_handler(configure, capsys):
    for _ in range(3):
        configure(LOG_FORMAT="json")
    sanic = logging.getLogger("sanic.root")
    sanic.addHandler(logging.StreamHandler())  # as Sanic's own logging defaults would
    configure(LOG_FORMAT="json")
    assert not sanic.handlers
    assert sum(isinstance(h, StderrHandler) for h in logging.getLogger().handlers) == 1
    logging.getLogger("sanic.root").info("once")
    assert len(lines(capsys)) == 1
