"""`adminTF`: the old server's admin command, kept for people following its documentation."""

from __future__ import annotations

import click

from taskfarm.entrypoints.cli.context import opened_services


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--init-db", is_flag=True, help="Create the database tables.")
@click.option("-u", "--user", "username", help="The user to create.")
@click.option("-p", "--password", help="The password of the user to create.")
def main(init_db: bool, username: str | None, password: str | None) -> None:
    """Create the database tables and users (same as `taskfarm db init` / `taskfarm user add`)."""
    if username is not None and password is None:
        raise click.UsageError("need to set password (-p) with the user (-u)")
    with opened_services() as services:
        if init_db:
            click.echo("The database is ready.")
        if username is not None and password is not None:
            services.accounts.add_user(username, password)
            click.echo(f"Added user {username!r}.")
