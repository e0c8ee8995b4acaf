"""``make fuzz``: schemathesis against a live server, with every check, for a bounded time.

It starts what a real deployment has, on this machine only: the server as deployed
(``sanic ... --factory``, the poller on) on a scratch database of the machine's
PostgreSQL (created, migrated, dropped afterwards), talking to the local CoinGecko
stand-in; registers a user and hands schemathesis its token. Any 5xx, any answer the
OpenAPI document does not describe (status, schema, content type, headers) and every
other check schemathesis has fails the run (exit status 1).

    python -m tests.fuzz.run_fuzz [--seconds 60] [--max-examples N] [-- schemathesis args]

FUZZ_SECONDS and FUZZ_MAX_EXAMPLES set the defaults of the two options.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.database import fresh_database
from tests.support.server_process import ROOT, running_server, server_env

CONFIG = Path(__file__).with_name("schemathesis.toml")
USERNAME, PASSWORD = "fuzzer", "fuzzer password"


def schemathesis_command(
    base_url: str, token: str, seconds: int, max_examples: int | None, extra: Sequence[str]
) -> list[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/docs/openapi.json",
        "--url",
        base_url,
        "--checks",
        "all",
        "--max-time",
        str(seconds),
        "--header",
        f"Authorization: Bearer {token}",
        "--generation-database",
        "none",  # no .hypothesis directory in the work tree; the seed reproduces a run
        "--no-color",
    ]
    if max_examples is not None:
        command += ["--max-examples", str(max_examples)]
    return [*command, *extra]


async def fuzz(seconds: int, max_examples: int | None, extra: Sequence[str]) -> int:
    with fresh_database("cps_fuzz") as database_url, tempfile.TemporaryDirectory() as scratch:
        async with FakeCoinGecko() as gecko:
            env = server_env(
                database_url,
                gecko.base_url,
                Path(scratch),
                PRICE_POLL_INTERVAL_SECONDS="5",
                LOG_LEVEL="WARNING",
            )
            log_path = Path(scratch) / "server.log"
            async with running_server(env, log_path) as server:
                await server.wait_ready()
                token = (await server.register(USERNAME, PASSWORD))["Authorization"].split()[1]
                command = schemathesis_command(server.base_url, token, seconds, max_examples, extra)
                print("fuzzing", server.base_url, "for at most", seconds, "s", flush=True)
                process = await asyncio.create_subprocess_exec(*command, cwd=scratch)
                status = await process.wait()
            log = log_path.read_text(errors="replace")
    if "Traceback" in log:
        print("\nthe server logged a traceback:\n" + log[-6000:], file=sys.stderr)
        status = status or 1
    return status


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 60)))
    parser.add_argument(
        "--max-examples",
        type=int,
        default=int(os.environ.get("FUZZ_MAX_EXAMPLES") or 0) or None,
    )
    parser.add_argument("extra", nargs="*", help="more schemathesis run options, after --")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    sys.exit(asyncio.run(fuzz(args.seconds, args.max_examples, args.extra)))


if __name__ == "__main__":
    main()
