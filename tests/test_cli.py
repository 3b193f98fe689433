"""The leadflow command, as a person runs it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.settings import get_settings
from tests.conftest import _create_database, _drop_database
from tests.processes import Process, wait_ready

runner = CliRunner()


def test_check_config_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "leadflow.yaml"
    bad.write_text("forms:\n  demo:\n    fields: {mail: e-mail}\n")

    result = runner.invoke(app, ["check-config", str(bad)])

    assert result.exit_code == 2
    assert f"{bad}:3: forms.demo.fields: mail: 'e-mail' is not a lead field" in result.output


def test_init_writes_a_starter_that_checks_clean(tmp_path: Path) -> None:
    target = tmp_path / "leadflow.yaml"

    written = runner.invoke(app, ["init", str(target)])
    again = runner.invoke(app, ["init", str(target)])
    checked = runner.invoke(app, ["check-config", str(target)])

    assert written.exit_code == 0
    assert "# leadflow.yaml" in target.read_text()
    assert again.exit_code == 1
    assert "exists" in again.output
    assert checked.exit_code == 0
    assert "OK (1 forms" in checked.output


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    for command in ("serve", "worker", "migrate", "check-config", "init"):
        assert command in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "leadflow", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("leadflow serve did not become ready within 60s")


def _wait_status(base: str, lead_id: str, status: str) -> dict[str, object]:
    headers = {"Authorization": "Bearer cli-token"}
    deadline = time.monotonic() + 30
    lead: dict[str, object] = {}
    while time.monotonic() < deadline:
        lead = httpx.get(f"{base}/v1/leads/{lead_id}", headers=headers, timeout=5).json()
        if lead["status"] == status:
            return lead
        time.sleep(0.1)
    raise AssertionError(f"lead stayed {lead.get('status')!r}, expected {status!r}")


def _stop(*processes: subprocess.Popen[bytes]) -> list[str]:
    """SIGTERM each process, as a supervisor would; return what each wrote to stderr."""
    for process in processes:
        process.terminate()
    logs = []
    for process in processes:
        try:
            _, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        logs.append(err.decode())
    return logs


@pytest.mark.slow
@pytest.mark.parametrize(
    "separate_worker", [False, True], ids=["embedded-worker", "separate-worker"]
)
def test_serve_takes_a_submission_to_routed(
    fresh_database: str, tmp_path: Path, separate_worker: bool
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": fresh_database,
        "LEADFLOW_ADMIN_TOKEN": "cli-token",
        "LEADFLOW_DATA_DIR": str(tmp_path),
    }
    serve_args = ["serve", "--port", str(port)] + (["--no-worker"] if separate_worker else [])
    processes = [_start(serve_args, env)]
    try:
        _wait_ready(base, processes[0])
        if separate_worker:
            processes.append(_start(["worker", "--concurrency", "2"], env))
        response = httpx.post(
            f"{base}/v1/forms/demo/submissions",
            json={"email": "cli@acme.io", "name": "Cli Person"},
            timeout=10,
        )
        assert response.status_code == 202
        lead = _wait_status(base, response.json()["lead_id"], "routed")
        assert [e["type"] for e in lead["timeline"]] == [  # type: ignore[union-attr,index]
            "received",
            "lead.validate",
            "lead.dedup",
            "lead.score",
            "lead.route",
        ]
    finally:
        logs = _stop(*processes)
    # uvicorn re-raises SIGTERM after its graceful shutdown, so that is the exit status
    assert all(p.returncode in (0, -signal.SIGTERM) for p in processes), logs
    assert "Application shutdown complete" in logs[0]


@pytest.mark.slow
def test_serve_stops_its_embedded_database_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "LEADFLOW_DATABASE_URL"}
    env |= {"LEADFLOW_DATA_DIR": str(tmp_path), "LEADFLOW_ADMIN_TOKEN": "t"}
    serve = _start(["serve", "--port", str(port)], env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", serve)
        pid_file = tmp_path / "postgres" / "postmaster.pid"
        postgres_pid = int(pid_file.read_text().split()[0])
        os.kill(postgres_pid, 0)  # running
    finally:
        _stop(serve)

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(postgres_pid, 0)
        except ProcessLookupError:
            break  # stopped with the service, as a supervisor expects
        time.sleep(0.2)
    else:
        raise AssertionError("the embedded PostgreSQL outlived `leadflow serve`")


def _embedded_env(home: Path) -> dict[str, str]:
    """A user with no LEADFLOW_* settings: the data directory is the per-user one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {"HOME": str(home), "XDG_DATA_HOME": str(home / "data")}
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def _leadflow(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadflow", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.slow
def test_every_command_finds_the_database_of_serve_from_any_folder(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (elsewhere / "contacts.csv").write_text("email,first_name,last_name\nana@acme.de,Ana,Weber\n")
    env = _embedded_env(tmp_path)
    data = tmp_path / "data" / "leadflow"
    port = _free_port()
    serve = Process(["serve", "--port", str(port)], env, tmp_path / "serve.log", cwd=project)
    try:
        wait_ready(f"http://127.0.0.1:{port}", serve)
        postgres_pid = int((data / "postgres" / "postmaster.pid").read_text().split()[0])

        first = _leadflow(["import", "contacts.csv"], elsewhere, env)
        again = _leadflow(["import", str(elsewhere / "contacts.csv")], project, env)

        os.kill(postgres_pid, 0)  # serve's PostgreSQL, joined and left running
        token = (data / "admin-token").read_text().strip()
        leads = httpx.get(
            f"http://127.0.0.1:{port}/v1/leads",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
    finally:
        serve.stop()
    assert first.returncode == 0, first.stderr
    assert "1 rows: 1 new contacts" in first.stdout
    assert again.returncode == 0, again.stderr
    assert "1 rows: 0 new contacts, 1 merged into known leads" in again.stdout
    assert sorted((lead["email"], lead["status"]) for lead in leads["items"]) == [
        ("ana@acme.de", "imported"),
        ("ana@acme.de", "merged"),  # the second import found the first one's contact
    ]
    assert not (project / "var").exists()
    assert not (elsewhere / "var").exists()
    for output in (first.stderr, again.stderr, serve.log()):
        assert "Warning" not in output
        assert "pgserver" not in output
    assert "Running commandline" in (data / "postgres.log").read_text()


@pytest.mark.slow
def test_serve_prints_a_short_banner_and_the_token_only_when_it_is_new(tmp_path: Path) -> None:
    env = _embedded_env(tmp_path)
    data = tmp_path / "data" / "leadflow"
    logs = []
    for run in ("first", "second"):
        port = _free_port()
        serve = Process(["serve", "--port", str(port)], env, tmp_path / f"{run}.log", cwd=tmp_path)
        try:
            wait_ready(f"http://127.0.0.1:{port}", serve)
            serve.wait_for_log("form 'demo'")
        finally:
            serve.stop()
        logs.append(serve.log().splitlines())
    token = (data / "admin-token").read_text().strip()

    first, second = logs
    assert first[0] == f"Creating the embedded PostgreSQL in {data / 'postgres'} ..."
    banner = first[1 : first.index(next(line for line in first if "form 'demo'" in line)) + 1]
    assert re.fullmatch(
        r"Leadflow 0\.1\.0 is ready: open (http://127\.0\.0\.1:\d+)/ in a browser "
        r"\(API docs: \1/docs\)",
        banner[0],
    ), banner[0]
    assert banner[1:5] == [
        f"  data:   {data}",
        "  config: built-in demo config (set LEADFLOW_CONFIG)",
        f"  database: embedded database in {data / 'postgres'}",
        f"  admin token (new, kept in {data / 'admin-token'}): {token}",
    ]
    assert f"  admin token: in {data / 'admin-token'}" in second
    assert not any(token in line for line in second)  # not shown again
    startup = second[: second.index(next(line for line in second if "form 'demo'" in line))]
    assert len(startup) == 5, second  # no migration, queue or server chatter


Setenv = Callable[[str, str], None]


@pytest.fixture
def leadflow_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Setenv]:
    """Sets a variable for the commands the test runs (their settings are read anew)."""

    def setenv(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield setenv
    get_settings.cache_clear()


@pytest.fixture
def empty_database(server_url: str, leadflow_env: Setenv) -> Iterator[str]:
    """A database without Leadflow's schema, as LEADFLOW_DATABASE_URL."""
    url = _create_database(server_url)
    leadflow_env("LEADFLOW_DATABASE_URL", url)
    yield url
    _drop_database(server_url, url)


def _tables(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        return int(row[0]) if row else 0


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["import", "contacts.csv"],
        ["route", "--lead", '{"country": "DE"}'],
        ["dlq", "list"],
        ["rescore"],
    ],
    ids=lambda args: args[0],
)
def test_a_database_without_the_schema_is_named_in_one_line(
    empty_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "contacts.csv").write_text("email\nana@acme.de\n")
    url = make_url(empty_database)  # the machine's server, or the suite's embedded one
    at = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"

    result = runner.invoke(app, args)

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: the database at {at} has no Leadflow schema; run `leadflow migrate`"
    ]
    assert _tables(empty_database) == 0  # nothing was created


def test_a_database_that_is_down_is_named_in_one_line(leadflow_env: Setenv) -> None:
    port = _free_port()
    leadflow_env("LEADFLOW_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/leads")

    result = runner.invoke(app, ["status"])

    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith(f"error: cannot reach the database at 127.0.0.1:{port}/leads: ")
    assert "Connection refused" in line


def test_a_bad_config_is_named_by_file_line_and_field_for_every_command(
    tmp_path: Path, leadflow_env: Setenv
) -> None:
    bad = tmp_path / "leadflow.yaml"
    bad.write_text("owners:\n  - {email: ana@example.com, timezone: Mars/Olympus}\n")
    (tmp_path / "accounts.csv").write_text("name,owner\nAcme,ana@example.com\n")
    leadflow_env("LEADFLOW_CONFIG", str(bad))

    results = [
        runner.invoke(app, args)
        for args in (
            ["status"],
            ["route", "--set", "country=DE"],
            ["import", str(tmp_path / "accounts.csv"), "--accounts"],
        )
    ]

    for result in results:
        assert result.exit_code == 2
        assert result.output.splitlines() == [
            f"{bad}:2: owners[0].timezone: 'Mars/Olympus' is not an IANA time zone like "
            "Europe/Berlin"
        ]


def test_a_usage_error_is_one_line() -> None:
    result = runner.invoke(app, ["route", "--lead", "[1]"])

    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "error: Invalid value: --lead must be a JSON object (see `leadflow route --help`)"
    ]


def test_a_bad_setting_is_named_in_one_line(leadflow_env: Setenv) -> None:
    leadflow_env("LEADFLOW_DB_POOL_SIZE", "ten")

    result = runner.invoke(app, ["status"])

    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "error: LEADFLOW_DB_POOL_SIZE: Input should be a valid integer, unable to parse string "
        "as an integer"
    ]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"LEADFLOW_EMBEDDED_DATABASE": "false"},
            "LEADFLOW_DATABASE_URL is not set, and this install starts no embedded PostgreSQL",
        ),
        ({"LEADFLOW_DATABASE_URL": "mysql://db/leads"}, "Leadflow needs PostgreSQL; got a 'mysql'"),
    ],
)
def test_a_container_without_a_database_url_says_so_in_one_line(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    # As the image runs it: the embedded PostgreSQL is off (Dockerfile), no URL given.
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    result = subprocess.run(
        [sys.executable, "-m", "leadflow", "migrate"],
        env={**base, "LEADFLOW_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "postgres").exists()  # nothing started, nothing written


def test_token_prints_the_admin_token_serve_uses(tmp_path: Path, leadflow_env: Setenv) -> None:
    leadflow_env("LEADFLOW_DATA_DIR", str(tmp_path))

    first = runner.invoke(app, ["token"])
    again = runner.invoke(app, ["token"])
    leadflow_env("LEADFLOW_ADMIN_TOKEN", "chosen-by-me")
    chosen = runner.invoke(app, ["token"])

    assert first.exit_code == 0
    assert first.output == (tmp_path / "admin-token").read_text()  # generated once, kept
    assert again.output == first.output
    assert chosen.output == "chosen-by-me\n"
