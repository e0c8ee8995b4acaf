"""Enough open files for the streams: each is a socket, and a shell's soft limit is
often 1,024, below STREAM_MAX_CLIENTS' 5,000. The soft limit is raised (up to the
hard one, which only root can raise) at start, and a line says when even that is short."""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable

log = logging.getLogger(__name__)

# Besides the streams: other requests, PostgreSQL and Redis connections, files.
SPARE = 1_024

Limits = tuple[int, int]


def ensure_open_files(
    streams: int,
    *,
    get: Callable[[int], Limits] = resource.getrlimit,
    set_: Callable[[int, Limits], None] = resource.setrlimit,
) -> int:
    """Raise RLIMIT_NOFILE's soft limit to fit ``streams`` streams; returns it."""
    needed = streams + SPARE
    soft, hard = get(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        try:
            set_(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("could not raise the open-files limit from %d: %s", soft, error)
    if soft < needed:
        log.warning(
            "the open-files limit is %d (hard limit %d): fewer than STREAM_MAX_CLIENTS=%d "
            "streams fit; raise the hard limit (ulimit -Hn, LimitNOFILE, the container's "
            "nofile) or lower STREAM_MAX_CLIENTS",
            soft,
            hard,
            streams,
        )
    return soft
