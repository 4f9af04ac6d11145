"""What the client commands share: the server and the login, durations, tables and JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import attrs
import click
import requests

from taskfarm.client.api import Api, api_base
from taskfarm.client.errors import UnexpectedStatus
from taskfarm.client.login import TOKEN_VARIABLE, Login, NoLogin
from taskfarm.client.session import Retries

DEFAULT_URL = "http://127.0.0.1:5000/"
#: A person waiting at a prompt hears of an unreachable server within seconds; workers use
#: the client's patient default instead.
PROMPT_RETRIES = Retries(attempts=2)

Command = TypeVar("Command", bound=Callable[..., Any])


@attrs.frozen
class Server:
    """The server a command talks to, and who it logs in as."""

    url: str
    login: Login


def server_options(command: Command) -> Command:
    """The server and the login, from options or the environment, given to the command as
    `server`: a token (--token, TASKFARM_TOKEN) when there is one, else the user and their
    password."""
    options = [
        click.option(
            "--url",
            envvar="TASKFARM_URL",
            default=DEFAULT_URL,
            show_default=True,
            show_envvar=True,
            help="The server's address.",
        ),
        click.option("--user", envvar="TASKFARM_USER", show_envvar=True),
        click.option(
            "--password",
            envvar="TASKFARM_PASSWORD",
            default="",
            show_envvar=True,
            help="Better given in the environment, where other users cannot see it.",
        ),
        click.option(
            "--token",
            envvar=TOKEN_VARIABLE,
            show_envvar=True,
            help="A token to log in with instead of a user and password: a worker token "
            "(taskfarm tokens create) for a batch script; it wins over --user.",
        ),
    ]

    @wraps(command)
    def with_server(
        url: str, user: str | None, password: str, token: str | None, **arguments: Any
    ) -> Any:
        try:
            login = Login.of(user, password, token)
        except NoLogin as error:
            raise click.UsageError(str(error)) from None
        return command(server=Server(url, login), **arguments)

    for option in reversed(options):
        with_server = option(with_server)
    return with_server  # type: ignore[return-value]


@contextmanager
def connected(server: Server, retries: Retries = PROMPT_RETRIES) -> Iterator[Api]:
    """The server's API, logged in; its refusals and absence become messages, not tracebacks."""
    try:
        api = Api.log_in(server.login, api_base(server.url), retries)
    except (UnexpectedStatus, requests.RequestException) as error:
        raise _problem(error, server.url) from error
    try:
        yield api
    except (UnexpectedStatus, requests.RequestException) as error:
        raise _problem(error, server.url) from error
    finally:
        api.close()


def _problem(error: Exception, url: str) -> click.ClickException:
    if isinstance(error, UnexpectedStatus):
        return click.ClickException(f"{error.detail} (HTTP {error.status})")
    return click.ClickException(f"cannot reach the server at {url}: {error}")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, not a table.")


def echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; None shows as `-`."""
    cells = [list(headers), *([_cell(value) for value in row] for row in rows)]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([smhd]?)\s*")
_SECONDS_PER = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds from `3600`, `90s`, `15m`, `1.5h` or `2d`."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write seconds (3600) or a number followed by "
            "s, m, h or d (90m, 23h)"
        )
    return float(match[1]) * _SECONDS_PER[match[2]]


Parsed = TypeVar("Parsed")


def parsed_with(
    parse: Callable[[str], Parsed],
) -> Callable[[click.Context, click.Parameter, str | None], Parsed | None]:
    """An option's callback: its value as `parse` reads it, whose ValueError is a usage
    error naming the option."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> Parsed | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as error:
            raise click.BadParameter(str(error), ctx, param) from error

    return callback


def duration_option(
    name: str, help: str, default: str | None = None
) -> Callable[[Command], Command]:
    """An option taking a duration: `3600`, `90s`, `15m`, `1.5h` or `2d`."""
    return click.option(
        name,
        metavar="DURATION",
        callback=parsed_with(parse_duration),
        default=default,
        show_default=default is not None,
        help=help,
    )
