"""The `taskfarm` and `adminTF` commands on a real SQLite database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings
from taskfarm.domain import AuthenticationFailed
from taskfarm.entrypoints.cli.admin import main as admin_tf
from taskfarm.entrypoints.cli.context import ensure_first_user
from taskfarm.entrypoints.cli.main import cli


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'taskfarm.db'}"


@pytest.fixture
def runner(database_url: str) -> CliRunner:
    return CliRunner(env={"DATABASE_URL": database_url, "TASKFARM_SECRET_KEY": ""})


def check_login(database_url: str, username: str, password: str) -> bool:
    services = bootstrap(Settings(database_url=database_url))
    try:
        services.accounts.authenticate(username, password)
    except AuthenticationFailed:
        return False
    finally:
        services.close()
    return True


def test_db_init_creates_the_database(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["db", "init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "taskfarm.db").exists()
    assert runner.invoke(cli, ["db", "init"]).exit_code == 0


def test_user_lifecycle(runner: CliRunner, database_url: str) -> None:
    assert runner.invoke(cli, ["user", "add", "ada", "--password", "engine"]).exit_code == 0
    assert runner.invoke(cli, ["user", "add", "bob"], input="secret\nsecret\n").exit_code == 0
    assert runner.invoke(cli, ["user", "add", "eve", "--admin", "--password", "x"]).exit_code == 0
    assert runner.invoke(cli, ["user", "list"]).output.split() == [
        *("NAME", "ROLE"),
        *("ada", "user"),
        *("bob", "user"),
        *("eve", "admin"),
    ]
    listed = json.loads(runner.invoke(cli, ["user", "list", "--json"]).output)
    assert listed[2] == {"name": "eve", "role": "admin"}
    assert check_login(database_url, "bob", "secret")

    assert runner.invoke(cli, ["user", "passwd", "bob", "--password", "better"]).exit_code == 0
    assert not check_login(database_url, "bob", "secret")
    assert check_login(database_url, "bob", "better")

    deleted = runner.invoke(cli, ["user", "delete", "bob"])
    assert deleted.exit_code == 0
    assert "0 run(s) of theirs are left to admins" in deleted.output
    assert [
        user["name"] for user in json.loads(runner.invoke(cli, ["user", "list", "--json"]).output)
    ] == ["ada", "eve"]


def test_user_errors_are_messages_not_tracebacks(runner: CliRunner) -> None:
    runner.invoke(cli, ["user", "add", "ada", "--password", "engine"])
    duplicate = runner.invoke(cli, ["user", "add", "ada", "--password", "other"])
    assert duplicate.exit_code == 1
    assert "already" in duplicate.output
    missing = runner.invoke(cli, ["user", "delete", "nobody"])
    assert missing.exit_code == 1
    assert "no user named 'nobody'" in missing.output
    colon = runner.invoke(cli, ["user", "add", "a:b", "--password", "x"])
    assert colon.exit_code == 1
    assert "colon" in colon.output


def test_bad_settings_are_reported(database_url: str) -> None:
    runner = CliRunner(env={"DATABASE_URL": "mysql://nowhere", "TASKFARM_SECRET_KEY": ""})
    result = runner.invoke(cli, ["db", "init"])
    assert result.exit_code == 1
    assert "DATABASE_URL" in result.output
    short_key = CliRunner(env={"DATABASE_URL": database_url, "TASKFARM_SECRET_KEY": "short"})
    assert "TASKFARM_SECRET_KEY" in short_key.invoke(cli, ["db", "init"]).output


def test_admin_tf_follows_the_old_documentation(runner: CliRunner, database_url: str) -> None:
    assert runner.invoke(admin_tf, ["--init-db"]).exit_code == 0
    assert runner.invoke(admin_tf, ["-u", "some_user", "-p", "some_password"]).exit_code == 0
    assert check_login(database_url, "some_user", "some_password")
    assert runner.invoke(admin_tf, ["-u", "other"]).exit_code == 2


def test_first_user_gets_a_generated_password_shown_once(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=database_url)
    services = bootstrap(settings)
    try:
        ensure_first_user(services, settings)
        printed = capsys.readouterr().out
        password = printed.split("with password ")[1].split()[0]
        assert services.accounts.authenticate("admin", password).username == "admin"
        ensure_first_user(services, settings)
        assert capsys.readouterr().out == ""
    finally:
        services.close()


def test_first_user_comes_from_the_environment(database_url: str) -> None:
    settings = Settings(database_url=database_url, admin_user="root", admin_password="hunter22")
    services = bootstrap(settings)
    try:
        ensure_first_user(services, settings)
        assert services.accounts.authenticate("root", "hunter22").username == "root"
    finally:
        services.close()
