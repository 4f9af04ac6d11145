"""`taskfarm`: serve the API and look after its database and users."""

from __future__ import annotations

import os
from contextlib import ExitStack

import click
import uvicorn

from taskfarm import __version__
from taskfarm.config import LOG_FORMATS, Settings, SettingsError
from taskfarm.domain import SchemaUpgrade
from taskfarm.entrypoints.cli.context import ensure_first_user, opened_services, opened_storage
from taskfarm.entrypoints.cli.options import echo_json, table
from taskfarm.entrypoints.cli.runs import runs
from taskfarm.entrypoints.cli.tokens import tokens
from taskfarm.entrypoints.cli.work import work
from taskfarm.entrypoints.http import create_app
from taskfarm.entrypoints.http.access_log import AccessLog
from taskfarm.entrypoints.http.metrics import metrics_directory
from taskfarm.entrypoints.logs import audit_to_stderr, logging_config

DEFAULT_PORT = 5000


@click.group()
@click.version_option(__version__, prog_name="taskfarm")
def cli() -> None:
    """Hand out the tasks of embarrassingly parallel runs to workers over HTTP.

    serve, db and user work on the database named by DATABASE_URL (default
    sqlite:///taskfarm.db); runs, tokens and work talk to a server over HTTP (TASKFARM_URL,
    and TASKFARM_USER with TASKFARM_PASSWORD, or TASKFARM_TOKEN).
    """


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=lambda: int(os.environ.get("PORT", DEFAULT_PORT)),
    show_default="$PORT or 5000",
    help="Port to listen on.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server processes; they share the database and nothing else.",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default=None,
    show_default="$TASKFARM_LOG_FORMAT or text",
    help="text for people, json (one object per line) for log shippers.",
)
def serve(host: str, port: int, workers: int, log_format: str | None) -> None:
    """Serve the API, creating the database and a first user if there are none.

    A database of an earlier taskfarm is left alone: back it up, then upgrade it with
    `taskfarm db upgrade`.
    """
    if log_format is not None:
        # The server processes read their settings from the environment.
        os.environ["TASKFARM_LOG_FORMAT"] = log_format
    with ExitStack() as resources:
        try:
            settings = Settings.from_env()
            # Before any server process starts: each looks for the directory as it starts.
            resources.enter_context(metrics_directory(workers))
        except SettingsError as error:
            raise click.ClickException(str(error)) from error
        if settings.database_url.startswith("memory:"):
            _serve_in_memory(settings, host, port, workers)
        else:
            _serve(settings, host, port, workers)


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """`workers` processes, each opening the database for itself."""
    # The schema, the signing key and the first user are made once, here, before the server
    # processes start and race for them.
    with opened_services(settings) as services:
        ensure_first_user(services, settings)
    click.echo(f"taskfarm {__version__} on http://{host}:{port}/ with {workers} process(es)")
    uvicorn.run(
        "taskfarm.entrypoints.http.asgi:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=logging_config(settings.log_format),
        # Each request is logged once, with its route, by the app's own access log.
        access_log=False,
    )


def _serve_in_memory(settings: Settings, host: str, port: int, workers: int) -> None:
    """One process serving the store it created the first user in: a memory store lives in
    one process only, so each of several would start empty."""
    if workers != 1:
        raise click.UsageError("memory:// keeps everything in one process: use --workers 1")
    with opened_services(settings) as services:
        ensure_first_user(services, settings)
        click.echo(f"taskfarm {__version__} on http://{host}:{port}/, in memory")
        access_log = AccessLog.to_stderr(settings.log_format)
        app = create_app(services, close_on_shutdown=False, access_log=access_log)
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            log_config=logging_config(settings.log_format),
            access_log=False,
        )


@cli.group()
def db() -> None:
    """Look after the database."""


@db.command("init")
def db_init() -> None:
    """Create the tables in an empty database; does nothing to an up-to-date one."""
    with opened_services():
        click.echo("The database is ready.")


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring a database of any earlier taskfarm to this one's schema. Back it up first."""
    with opened_storage() as storage:
        upgrade = storage.upgrade_schema()
    click.echo(_upgrade_report(upgrade))


def _upgrade_report(upgrade: SchemaUpgrade | None) -> str:
    if upgrade is None:
        return "This database keeps no schema: there is nothing to upgrade."
    if upgrade.found is None:
        return f"Created the schema at version {upgrade.current}."
    if not upgrade.changed:
        return f"The schema is up to date at version {upgrade.current}."
    return f"Upgraded the schema from version {upgrade.found} to version {upgrade.current}."


@cli.group()
def user() -> None:
    """Add, list and remove the users who may use the server: whoever may run these commands
    (who can open the database) manages users. Each change is an audit line on stderr."""
    log_format = os.environ.get("TASKFARM_LOG_FORMAT") or "text"
    audit_to_stderr(log_format if log_format in LOG_FORMATS else "text")


@user.command("add")
@click.argument("name")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin", is_flag=True, help="An admin sees and changes every user's runs.")
def user_add(name: str, password: str, admin: bool) -> None:
    """Add a user, who sees and changes their own runs only (an admin: every run); asks for
    the password unless given."""
    with opened_services() as services:
        added = services.accounts.add_user(name, password, admin=admin)
    click.echo(f"Added {added.role} {name!r}.")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, not a table.")
def user_list(as_json: bool) -> None:
    """List the users and their roles."""
    with opened_services() as services:
        users = services.accounts.list_users()
    if as_json:
        echo_json([{"name": account.username, "role": account.role} for account in users])
    else:
        click.echo(table(("NAME", "ROLE"), [(account.username, account.role) for account in users]))


@user.command("delete")
@click.argument("name")
def user_delete(name: str) -> None:
    """Delete a user: their tokens and worker tokens stop working at once, and their runs are
    left to nobody, for admins to see to."""
    with opened_services() as services:
        disowned = services.accounts.delete_user(name)
    click.echo(f"Deleted user {name!r}; {disowned} run(s) of theirs are left to admins.")


@user.command("passwd")
@click.argument("name")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def user_passwd(name: str, password: str) -> None:
    """Change a user's password; their tokens stop working at once."""
    with opened_services() as services:
        services.accounts.change_password(name, password)
    click.echo(f"Changed the password of {name!r}.")


cli.add_command(work)
cli.add_command(runs)
cli.add_command(tokens)
