"""Jupyter (use_jupyter), really run: the generated jupyter_server_config.py served by
jupyter_server, the generated scripts/jupyter.sh, and the starter notebooks executed by nbclient.

- With JUPYTER_TOKEN set, the server answers 403 without it (or with a wrong one) and 200
  with it, as ?token= or as an Authorization header; it listens on 127.0.0.1 only and keeps
  XSRF checks on (a cookie-authenticated POST without the _xsrf token is refused).
- Without JUPYTER_TOKEN (or with the empty one devcontainer.json passes when the host has
  none), a random token is created on first start outside the project, mode 0600, printed
  by `scripts/jupyter.sh --url`, and kept across restarts; the autostart path starts the
  server only when JUPYTER_AUTOSTART=1.
- The notebook of each task type runs top to bottom on CPU in under a minute.

JupyterLab itself is not installed here (the dev image has it): the same settings file is
served by the bare Jupyter Server (`JUPYTER_APP=server` for the script). Tests run as root
in CI: the config alone refuses root (one test checks it), the script allows it and says so
(another checks that), and tests that start the server directly pass --ServerApp.allow_root.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.project

CONFIG = ".devcontainer/jupyter_server_config.py"
TOKEN = "test-token-0123456789abcdef"
AS_ROOT = ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(python: Path, home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: the test venv first on PATH, a HOME of its own, no JUPYTER_*."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "XDG_"))}
    env.update(PATH=f"{python.parent}:{env['PATH']}", HOME=str(home), **extra)
    return env


def wait_until_listening(port: int, process: subprocess.Popen | None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process is not None and process.poll() is not None:
            pytest.fail(f"jupyter_server exited with {process.returncode}")
        time.sleep(0.2)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@contextlib.contextmanager
def server(project: Path, python: Path, env: dict[str, str], *args: str) -> Iterator[int]:
    """jupyter_server with the generated config on a free port; yields the port."""
    port = free_port()
    log = (Path(env["HOME"]) / "server.log").open("w")
    process = subprocess.Popen(
        [str(python), "-m", "jupyter_server", f"--config={CONFIG}",
         f"--ServerApp.port={port}", *AS_ROOT, *args],
        cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until_listening(port, process)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def status(url: str, headers: dict[str, str] | None = None, opener: Any = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def post(opener: Any, url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url, data=b'{"type": "file", "ext": ".txt"}', method="POST", headers=headers
    )
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def project(render_cache) -> Path:
    return render_cache({})


def test_server_answers_403_without_the_token_and_200_with_it(
    project: Path, project_python: Path, tmp_path: Path
) -> None:
    env = server_env(project_python, tmp_path / "home", JUPYTER_TOKEN=TOKEN)
    with server(project, project_python, env) as port:
        base = f"http://127.0.0.1:{port}"
        assert status(f"{base}/api/status") == 403
        assert status(f"{base}/api/contents") == 403
        assert status(f"{base}/api/status?token=wrong") == 403
        assert status(f"{base}/api/contents", {"Authorization": "token wrong"}) == 403
        assert status(f"{base}/api/status?token={TOKEN}") == 200
        assert status(f"{base}/api/contents", {"Authorization": f"token {TOKEN}"}) == 200

        # XSRF on: logged in by cookie, a POST needs the _xsrf token as well.
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        assert status(f"{base}/?token={TOKEN}", opener=browser) == 200
        xsrf = next(cookie.value for cookie in jar if cookie.name == "_xsrf")
        assert post(browser, f"{base}/api/contents", {}) == 403
        assert post(browser, f"{base}/api/contents", {"X-XSRFToken": xsrf}) == 201

        # Bound to loopback only, serving the project root.
        runtime = Path(env["HOME"]) / ".local/share/jupyter/runtime"
        info = json.loads(next(runtime.glob("jpserver-*.json")).read_text())
        assert info["hostname"] == "127.0.0.1" and info["url"] == f"{base}/"
        assert Path(info["root_dir"]) == project


@pytest.mark.parametrize("jupyter_token", [None, ""], ids=["unset", "empty"])
def test_random_token_is_created_outside_the_project_and_shown(
    project: Path, project_python: Path, tmp_path: Path, jupyter_token: str | None
) -> None:
    extra = {} if jupyter_token is None else {"JUPYTER_TOKEN": jupyter_token}
    env = server_env(project_python, tmp_path / "home", JUPYTER_APP="server", **extra)
    token_file = Path(env["HOME"]) / ".local/share/jupyter/server-token"

    shown = subprocess.run(
        ["bash", "scripts/jupyter.sh", "--url"],
        cwd=project, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    token = token_file.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{48}", token)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert f"?token={token}" in shown
    assert not (project / "server-token").exists()

    with server(project, project_python, env) as port:
        base = f"http://127.0.0.1:{port}"
        assert status(f"{base}/api/status") == 403
        assert status(f"{base}/api/status?token={token}") == 200
    # The next start reuses the saved token.
    with server(project, project_python, env) as port:
        assert status(f"http://127.0.0.1:{port}/api/status?token={token}") == 200
    assert token_file.read_text().strip() == token


def test_autostart_starts_jupyter_only_when_asked(
    project: Path, project_python: Path, tmp_path: Path
) -> None:
    port = str(free_port())
    env = server_env(project_python, tmp_path / "home", JUPYTER_APP="server", JUPYTER_PORT=port)

    def autostart(flag: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "scripts/jupyter.sh", "--autostart"],
            cwd=project, env={**env, "JUPYTER_AUTOSTART": flag},
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip

    off = autostart("0")
    assert (off.returncode, off.stdout) == (0, "")
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(port))) != 0, "JUPYTER_AUTOSTART=0 started it"

    on = autostart("1")
    assert on.returncode == 0, on.stdout + on.stderr
    if os.geteuid() == 0:
        assert "running as root, so starting Jupyter with --ServerApp.allow_root=True" in on.stdout
    pid = int(re.search(r"Started in the background \(pid (\d+)\)", on.stdout).group(1))
    try:
        token = (Path(env["HOME"]) / ".local/share/jupyter/server-token").read_text().strip()
        assert f"http://127.0.0.1:{port}/?token={token}" in on.stdout
        assert status(f"http://127.0.0.1:{port}/api/status") == 403
        assert status(f"http://127.0.0.1:{port}/api/status?token={token}") == 200
        again = autostart("1")
        assert again.returncode == 0 and "already listens" in again.stdout
    finally:
        os.kill(pid, 15)


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the refusal to run as root")
def test_config_refuses_to_run_as_root(project: Path, project_python: Path, tmp_path: Path):
    env = server_env(project_python, tmp_path / "home", JUPYTER_TOKEN=TOKEN)
    result = subprocess.run(
        [str(project_python), "-m", "jupyter_server", f"--config={CONFIG}",
         f"--ServerApp.port={free_port()}"],
        cwd=project, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Running as root is not recommended" in result.stdout + result.stderr


EXECUTE = """
import sys, time
import nbformat
from nbclient import NotebookClient

path = sys.argv[1]
notebook = nbformat.read(path, as_version=4)
start = time.monotonic()
NotebookClient(notebook, timeout=60, kernel_name="python3",
               resources={"metadata": {"path": str(__import__("pathlib").Path(path).parent)}}
               ).execute()
print(f"seconds={time.monotonic() - start:.1f}")
outputs = "".join(
    output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
    for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
)
print(outputs)
"""


@pytest.mark.parametrize("task_type", ["cv", "nlp", "audio"])
def test_starter_notebook_runs_on_cpu_in_under_a_minute(
    render_cache, project_python: Path, tmp_path: Path, task_type: str
) -> None:
    project = render_cache({"task_type": task_type})
    notebooks = sorted((project / "notebooks").glob("*.ipynb"))
    assert [path.name for path in notebooks] == ["quickstart.ipynb"]
    env = server_env(
        project_python, tmp_path / "home", PYTHONPATH=str(project / "src"), OMP_NUM_THREADS="1"
    )
    result = subprocess.run(
        [str(project_python), "-c", EXECUTE, str(notebooks[0])],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    seconds = float(re.search(r"seconds=([\d.]+)", result.stdout).group(1))
    assert seconds < 60, f"the notebook took {seconds} s"
    assert "'status': 'completed'" in result.stdout and "'step': 20" in result.stdout
    assert "trained: loss" in result.stdout


def test_no_jupyter_files_without_use_jupyter(render_cache) -> None:
    project = render_cache({"use_jupyter": False})
    assert not (project / "notebooks").exists()
    assert not (project / CONFIG).exists()
    assert not (project / "scripts" / "jupyter.sh").exists()
    devcontainer = (project / ".devcontainer" / "devcontainer.json").read_text()
    assert "8888" not in devcontainer and "JUPYTER" not in devcontainer
