"""A fresh clone, as a newcomer gets it: ``make serve`` with no database configured.

The project's tracked files are copied to a temporary folder (what ``git clone`` gives),
and ``make serve`` runs there with no ``LEADFLOW_*`` setting and a data home of its
own: it creates its virtualenv with only what serving needs, starts the embedded
PostgreSQL, migrates and serves. The landing page, the API docs and the demo form
answer; a lead posted to the demo form is read back with the README's own command;
and stopping ``make serve`` leaves no process behind (PostgreSQL included).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.processes import free_port, wait_ready
from tests.readme import blocks

ROOT = Path(__file__).resolve().parents[1]
INSTALL_AND_START = 600.0  # seconds: a virtualenv from PyPI, then the embedded PostgreSQL


def _tracked_files(into: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def _readme_command(starting: str) -> str:
    """The README's console command that starts with ``starting``."""
    for block in blocks(ROOT / "README.md"):
        for command in block.commands:
            if command.command.startswith(starting):
                return command.command
    raise AssertionError(f"the README shows no `{starting}` command")


def _run_until_routed(
    exe: Path, args: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """The command, again until the lead it shows is routed (a second or so)."""
    deadline = time.monotonic() + 30
    while True:
        shown = subprocess.run(
            [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
        )
        if "status     routed" in shown.stdout or time.monotonic() > deadline:
            return shown
        time.sleep(0.5)


def _ours(clone: Path) -> list[psutil.Process]:
    """Processes whose command line or folder is inside the clone (PostgreSQL's too)."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        try:
            text = " ".join(process.info["cmdline"] or []) + " " + (process.info["cwd"] or "")
        except psutil.Error:
            continue
        if str(clone) in text and process.pid != os.getpid():
            found.append(process)
    return found


@pytest.mark.timeout(INSTALL_AND_START + 180)
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_serve_on_a_fresh_clone_serves_a_lead_and_stops_clean(tmp_path: Path) -> None:
    clone, home = tmp_path / "clone", tmp_path / "data-home"
    clone.mkdir()
    _tracked_files(clone)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "VIRTUAL_ENV"))}
    env |= {"XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "make-serve.log").open("wb")
    make = subprocess.Popen(
        ["make", "serve", f"ARGS=--port {port}"],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_ready(base, _Make(make, tmp_path / "make-serve.log"), timeout=INSTALL_AND_START)
        dev_tools = list((clone / ".venv").glob("lib/python*/site-packages/pytest"))
        assert dev_tools == [], "make serve installed the dev tools"
        page = httpx.get(f"{base}/", timeout=10)
        assert page.status_code == 200
        assert "/f/demo" in page.text
        assert "swagger-ui" in httpx.get(f"{base}/docs", timeout=10).text
        assert httpx.get(f"{base}/f/demo", timeout=10).status_code == 200
        command = _readme_command("leadflow leads show")  # ... ana.weber@acme-robotics.com
        words = shlex.split(command)
        email = words[-1]
        answer = httpx.post(
            f"{base}/v1/forms/demo/submissions",
            json={"email": email, "name": "Ana Weber", "org": "Acme Robotics"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        lead_id = answer.json()["lead_id"]
        shown = _run_until_routed(clone / ".venv" / "bin" / words[0], words[1:], tmp_path, env)
        assert shown.returncode == 0, shown.stderr
        assert email in shown.stdout
        assert lead_id in shown.stdout
        assert "status     routed" in shown.stdout
    finally:
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C, as the README says
        try:
            make.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            raise
        finally:
            log.close()
    deadline = time.monotonic() + 30
    while _ours(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [p.info["cmdline"] for p in _ours(tmp_path)] == []


class _Make:
    """``make serve`` as tests.processes.wait_ready watches a process."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.popen, self.log_path = popen, log

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
