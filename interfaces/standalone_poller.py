"""The standalone poller process, without the HTTP API:
``python -m interfaces.standalone_poller`` (its entry point; the schedule it runs is
``application.poll_schedule``).

For a deployment that would rather run the poller as a separate process (or
Deployment) and start its API servers with ``PRICE_POLLER_ENABLED=false``. It is
wired by the same ``bootstrap`` as the API and competes for the same leader lock,
so running it beside API servers that poll too is still safe: one polls at a time.
SIGTERM or SIGINT cancels it; a cycle in flight is rolled back whole.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from bootstrap import bootstrap, database

log = logging.getLogger("interfaces.standalone_poller")  # not __name__: that is __main__ under -m


async def run() -> None:
    wiring = bootstrap()
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        async with database(wiring):
            log.info(
                "price poller started (every %g s)", wiring.settings.price_poll_interval_seconds
            )
            await wiring.poll_schedule().run()
    except asyncio.CancelledError:
        log.info("price poller stopped")
    finally:
        await wiring.close()


def main() -> int:
    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
