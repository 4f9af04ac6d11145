"""The pages people read: a public front page, and behind a login the dashboard of the runs.

Browsers log in with HTTP Basic: `/dashboard` answers 401 with a challenge, the browser asks
for a username and password, then sends them with every later request to this server, `/`
included. So `/` shows the runs to whoever is signed in, and to anyone else what this server
is, with a link to sign in. The pages are plain HTML that refresh themselves; errors are pages
too, not the API's JSON.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from taskfarm.domain import (
    AuthenticationFailed,
    Caller,
    Forbidden,
    InvalidInput,
    RunNotFound,
    StorageError,
    TaskState,
    TooManyFailedLogins,
    User,
)
from taskfarm.entrypoints.http.errors import CHALLENGE
from taskfarm.entrypoints.http.services import password_checks, services
from taskfarm.entrypoints.http.templating import templates
from taskfarm.throughput import WINDOW

logger = logging.getLogger(__name__)

#: Seconds between two loads of a dashboard page: it reloads itself, without JavaScript.
REFRESH_SECONDS = 10
#: The most workers, failed tasks and requeued tasks a run's page lists of each.
LISTED = 100


async def index(request: Request) -> Response:
    """The runs, to a signed-in user; to anyone else what this server is and its version.
    ---
    summary: The front page
    responses:
      200:
        description: an HTML page of the runs, or naming taskfarm and its version with a link
          to sign in
        content:
          text/html:
            schema:
              type: string
      503:
        description: the database is unavailable; the page tries again by itself
        content:
          text/html:
            schema:
              type: string
    """
    if "authorization" not in request.headers:
        return _front(request, refused=False)
    return await _signed_in(request, _overview, refused=lambda: _front(request, refused=True))


async def dashboard(request: Request) -> Response:
    """Every run with its progress, tasks by state, throughput and time left.
    ---
    summary: The dashboard of runs
    responses:
      200:
        description: an HTML page of the runs, refreshing itself
        content:
          text/html:
            schema:
              type: string
      401:
        description: no credentials, or wrong ones; asks the browser for them
        content:
          text/html:
            schema:
              type: string
      503:
        description: the database is unavailable; the page tries again by itself
        content:
          text/html:
            schema:
              type: string
    """
    return await _signed_in(request, _overview)


async def run_page(request: Request) -> Response:
    """One run: its progress, the workers computing its tasks, its failed and requeued tasks.
    ---
    summary: The dashboard of one run
    responses:
      200:
        description: an HTML page of the run, refreshing itself
        content:
          text/html:
            schema:
              type: string
      401:
        description: no credentials, or wrong ones; asks the browser for them
        content:
          text/html:
            schema:
              type: string
      404:
        description: no such run
        content:
          text/html:
            schema:
              type: string
      503:
        description: the database is unavailable; the page tries again by itself
        content:
          text/html:
            schema:
              type: string
    """
    return await _signed_in(request, _run)


async def retry_failed(request: Request) -> Response:
    """The retry button of a run's page: puts its failed tasks back to waiting.
    ---
    summary: Retry a run's failed tasks from its page
    requestBody:
      required: true
      content:
        application/x-www-form-urlencoded:
          schema:
            type: object
            properties:
              form_token:
                type: string
            required: [form_token]
    responses:
      303:
        description: done; back to the run's page, which says how many went back
      401:
        description: no credentials, or wrong ones; asks the browser for them
        content:
          text/html:
            schema:
              type: string
      403:
        description: the form's token is missing or not this user's
        content:
          text/html:
            schema:
              type: string
      404:
        description: no such run
        content:
          text/html:
            schema:
              type: string
    """
    form = urllib.parse.parse_qs((await request.body()).decode("ascii", "replace"))
    token = form.get("form_token", [""])[0]
    return await _signed_in(request, lambda request, caller: _retry(request, caller, token))


def _retry(request: Request, caller: Caller, token: str) -> Response:
    farm = services(request)
    if not farm.accounts.check_form_token(caller.user, token):
        return _problem(
            request,
            403,
            "This form is not yours, or has expired",
            "Nothing was retried. Load the run's page again and use its button.",
            user=caller.user,
        )
    uuid = request.path_params["uuid"]
    retried = farm.farm_for(caller).retry(uuid)
    return RedirectResponse(f"/dashboard/runs/{uuid}?retried={retried}#failed", status_code=303)


def _front(request: Request, *, refused: bool) -> Response:
    return templates(request).TemplateResponse(
        request, "front.html", {"user": None, "refused": refused, "refresh_seconds": None}
    )


def _overview(request: Request, caller: Caller) -> Response:
    farm = services(request)
    runs = farm.farm_for(caller).list_runs()
    rows = [(run, farm.throughput.observe(run)) for run in runs]
    return _render(request, caller, "overview.html", rows=rows)


def _run(request: Request, caller: Caller) -> Response:
    farm = services(request)
    guarded = farm.farm_for(caller)
    uuid = request.path_params["uuid"]
    run = guarded.get_run(uuid)
    failed_after = _number(request, "failed_after", -1)
    return _render(
        request,
        caller,
        "run.html",
        run=run,
        estimate=farm.throughput.observe(run),
        holders=guarded.holders(uuid, LISTED),
        failed=guarded.list_tasks(uuid, TaskState.FAILED.value, failed_after, LISTED),
        failed_after=failed_after,
        retried=_number(request, "retried", None),
        form_token=farm.accounts.form_token(caller.user),
        requeued=guarded.requeued_tasks(uuid, LISTED),
    )


def _number(request: Request, name: str, default: int | None) -> Any:
    """A whole number from the page's query; anything else is as good as none."""
    try:
        return int(request.query_params[name])
    except (KeyError, ValueError):
        return default


def _render(request: Request, caller: Caller, name: str, **context: Any) -> Response:
    return templates(request).TemplateResponse(
        request,
        name,
        {
            "user": caller.user,
            "now": services(request).taskfarm.clock.now(),
            "refresh_seconds": REFRESH_SECONDS,
            "window_minutes": round(WINDOW.total_seconds() / 60),
            **context,
        },
    )


async def _signed_in(
    request: Request,
    page: Callable[[Request, Caller], Response],
    refused: Callable[[], Response] | None = None,
) -> Response:
    """The page for the user the request's credentials name, or the page of what went wrong.
    Credentials are checked as for the API (`PasswordChecks`); the page is made in the
    threadpool, as it reads the store."""
    try:
        caller = await password_checks(request).caller(request.scope)
    except TooManyFailedLogins as refusal:
        return _problem(
            request,
            429,
            "Too many failed sign-ins",
            str(refusal),
            headers={"Retry-After": str(refusal.retry_after)},
        )
    except AuthenticationFailed as refusal:
        if refused is not None:
            return refused()
        return _problem(
            request,
            401,
            "Sign in to see the runs",
            f"Give your taskfarm username and password when your browser asks ({refusal}).",
            headers=CHALLENGE,
        )
    return await run_in_threadpool(_page, request, page, caller)


def _page(
    request: Request, page: Callable[[Request, Caller], Response], caller: Caller
) -> Response:
    user = caller.user
    try:
        return page(request, caller)
    except Forbidden as error:
        return _problem(request, 403, "Not with a worker token", str(error), user=user)
    except InvalidInput as error:
        return _problem(request, 400, "That page does not exist", str(error), user=user)
    except RunNotFound:
        uuid = request.path_params.get("uuid", "")
        detail = f"There is no run {uuid!r} on this server: it may have been deleted."
        return _problem(request, 404, "No such run", detail, user=user)
    except StorageError as error:
        logger.error("storage failed on %s %s: %s", request.method, request.url.path, error)
        return _problem(
            request,
            503,
            "The database is unavailable",
            f"This page tries again every {REFRESH_SECONDS} seconds.",
            user=user,
            refresh_seconds=REFRESH_SECONDS,
        )


def _problem(
    request: Request,
    status_code: int,
    title: str,
    detail: str,
    *,
    user: User | None = None,
    headers: dict[str, str] | None = None,
    refresh_seconds: int | None = None,
) -> Response:
    back = "/dashboard" if user is not None else "/"
    return templates(request).TemplateResponse(
        request,
        "problem.html",
        {
            "user": user,
            "title": title,
            "detail": detail,
            "back": back,
            "back_text": "All runs" if user is not None else "What this server is",
            "refresh_seconds": refresh_seconds,
        },
        status_code=status_code,
        headers=headers,
    )
