"""`taskfarm tokens`: worker tokens, what a batch script carries instead of a password."""

from __future__ import annotations

import math

import click

from taskfarm.entrypoints.cli.options import (
    Server,
    connected,
    duration_option,
    echo_json,
    json_option,
    server_options,
    table,
)


@click.group()
def tokens() -> None:
    """Make, list and revoke worker tokens.

    A worker token works on the tasks of one run (claim, update, heartbeat, read the run)
    and nothing else: give it to batch jobs in TASKFARM_TOKEN instead of a password.
    """


@tokens.command("create")
@click.option("--run", "run", required=True, help="The run (uuid or name) it works on.")
@duration_option("--expires", help="Refused after this long (7d, 12h).  [default: never]")
@click.option("--name", help="What to call it in listings: letters, digits, '.', '_', '-'.")
@json_option
@server_options
def create(
    run: str, expires: float | None, name: str | None, as_json: bool, server: Server
) -> None:
    """Make a worker token for RUN and print it, so that a script can write
    TASKFARM_TOKEN=$(taskfarm tokens create --run RUN). It is shown this once: the server
    keeps only its hash."""
    lifetime = None if expires is None else math.ceil(expires)
    with connected(server) as api:
        created = api.create_token(run, lifetime, name)
    if as_json:
        echo_json(created)
    else:
        click.echo(created["token"])


@tokens.command("list")
@json_option
@server_options
def list_tokens(as_json: bool, server: Server) -> None:
    """List your worker tokens (an admin's: everybody's), oldest first."""
    with connected(server) as api:
        listed = api.list_tokens()
    if as_json:
        echo_json(listed)
    else:
        headers = ("ID", "NAME", "RUN", "OWNER", "CREATED", "EXPIRES")
        fields = ("id", "name", "run", "owner", "created", "expires")
        click.echo(table(headers, [[token.get(field) for field in fields] for token in listed]))


@tokens.command("revoke")
@click.argument("token_id", metavar="ID")
@server_options
def revoke(token_id: str, server: Server) -> None:
    """Revoke a worker token: every server process refuses it within a second."""
    with connected(server) as api:
        api.revoke_token(token_id)
    click.echo(f"Revoked token {token_id}.")
