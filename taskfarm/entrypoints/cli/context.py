"""Opening the services from the environment, with errors a person can act on."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import click

from taskfarm.bootstrap import Services, bootstrap, open_storage
from taskfarm.config import Settings, SettingsError
from taskfarm.domain import TaskFarmError
from taskfarm.ports import Storage

DEFAULT_ADMIN = "admin"


@contextmanager
def opened_services(settings: Settings | None = None) -> Iterator[Services]:
    """The services for one command; domain errors become clean messages, not tracebacks."""
    try:
        services = bootstrap(settings or Settings.from_env())
    except (SettingsError, TaskFarmError) as error:
        raise click.ClickException(str(error)) from error
    try:
        yield services
    except TaskFarmError as error:
        raise click.ClickException(str(error)) from error
    finally:
        services.close()


@contextmanager
def opened_storage() -> Iterator[Storage]:
    """The store alone, its schema as found: for the commands that look after the schema."""
    try:
        storage = open_storage(Settings.from_env().database_url)
    except (SettingsError, TaskFarmError) as error:
        raise click.ClickException(str(error)) from error
    try:
        yield storage
    except TaskFarmError as error:
        raise click.ClickException(str(error)) from error
    finally:
        storage.close()


def ensure_first_user(services: Services, settings: Settings) -> None:
    """With no user at all, creates an admin so that somebody can log in, and says how."""
    if services.accounts.has_users():
        return
    username = settings.admin_user or DEFAULT_ADMIN
    if settings.admin_password is not None:
        services.accounts.add_user(username, settings.admin_password, admin=True)
        click.echo(f"Created user {username!r} with the password in TASKFARM_ADMIN_PASSWORD.")
        return
    password = secrets.token_urlsafe(12)
    services.accounts.add_user(username, password, admin=True)
    click.echo(
        f"Created user {username!r} with password {password}\n"
        "It is shown only this once; change it with: taskfarm user passwd " + username
    )
