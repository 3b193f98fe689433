"""The leadflow command, as a person runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from leadflow.cli import app

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
    assert result.stderr.startswith(says)
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "postgres").exists()  # nothing started, nothing written
