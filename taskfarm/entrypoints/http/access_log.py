"""One log line per request: method, route, status and time, on the `taskfarm.access` logger."""

from __future__ import annotations

import logging

from taskfarm.entrypoints.http.observe import Answered

logger = logging.getLogger("taskfarm.access")


def log_request(answered: Answered) -> None:
    """Logs a request once it is answered (or failed, as a 500).

    The route is the path template (`/api/runs/{uuid}`), so that lines group by operation and
    carry no identifiers; the raw path when no route took the request.
    """
    method, status = answered.method, answered.status
    route = answered.path if answered.route is None else answered.route
    duration_ms = round(answered.seconds * 1000, 2)
    logger.info(
        "%s %s %d %.2fms",
        method,
        route,
        status,
        duration_ms,
        extra={"method": method, "route": route, "status": status, "ms": duration_ms},
    )
