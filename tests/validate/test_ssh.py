"""Validate level, SSH (use_ssh): the generated sshd_config passes OpenSSH's own check
(`sshd -t`), and its effective settings (`sshd -T`) are key-only, no root, port 2222, with
the keys from the mounted authorized_keys. sshd runs the way the dev container runs it: as an
unprivileged user, with its own host key and the environment passed by start-sshd.sh.
The container side follows the answer: openssh-server in the dev stage only, the port
published on the host's loopback only, the host's authorized_keys mounted read-only.

sshd comes from Debian's openssh-server (scripts/test.sh installs it); a missing sshd fails
these tests rather than skipping them.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import json5
import pytest
from answers import answer_id, pairwise

SSHD = Path("/usr/sbin/sshd")
WITH_SSH = [answers for answers in pairwise() if answers.get("use_ssh")] + [{"use_ssh": True}]
WITHOUT_SSH = [answers for answers in pairwise() if not answers.get("use_ssh")][:4]
# What start-sshd.sh hands to sessions, in the form it passes it.
SET_ENV = "SetEnv=PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin VIRTUAL_ENV=/opt/venv"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[Path, list[str]]]:
    """A folder the unprivileged user can read, holding an ed25519 host key it owns, and the
    command prefix that runs a program as that user (nothing when not root)."""
    if not SSHD.is_file():
        pytest.fail("sshd is missing: apt-get install openssh-server (scripts/test.sh does)")
    folder = Path(tempfile.mkdtemp(prefix="sshd-test-"))
    folder.chmod(0o755)
    key = folder / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    prefix: list[str] = []
    if os.geteuid() == 0:
        # Root would also need /run/sshd; the dev container runs sshd unprivileged anyway.
        nobody = pwd.getpwnam("nobody")
        os.chown(key, nobody.pw_uid, nobody.pw_gid)
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) runs sshd unprivileged"
        prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    yield folder, prefix
    shutil.rmtree(folder, ignore_errors=True)


def sshd(
    sandbox: tuple[Path, list[str]], config_text: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run sshd ARGS against a copy of `config_text`, with the sandbox's host key."""
    folder, prefix = sandbox
    config = folder / "sshd_config"
    config.write_text(config_text)
    config.chmod(0o644)
    return subprocess.run(
        [*prefix, str(SSHD), "-f", str(config), "-h", str(folder / "ssh_host_ed25519_key"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def effective(sandbox: tuple[Path, list[str]], config_text: str) -> dict[str, list[str]]:
    result = sshd(sandbox, config_text, "-T", "-o", SET_ENV)
    assert result.returncode == 0, result.stderr
    settings: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key, []).append(value)
    return settings


@pytest.mark.parametrize("answers", WITH_SSH, ids=answer_id)
def test_sshd_accepts_the_generated_config(render_cache, sandbox, answers: dict[str, Any]) -> None:
    config = (render_cache(answers) / ".devcontainer" / "sshd_config").read_text()
    result = sshd(sandbox, config, "-t", "-o", SET_ENV)
    assert result.returncode == 0, result.stderr

    settings = effective(sandbox, config)
    expected = {
        "port": ["2222"],
        "passwordauthentication": ["no"],
        "kbdinteractiveauthentication": ["no"],
        "permitrootlogin": ["no"],
        "permitemptypasswords": ["no"],
        "pubkeyauthentication": ["yes"],
        "authenticationmethods": ["publickey"],
        "authorizedkeysfile": ["/home/dev/.ssh/authorized_keys"],
        "allowusers": ["dev"],
        "usepam": ["no"],
        "x11forwarding": ["no"],
    }
    for key, value in expected.items():
        assert settings.get(key) == value, (key, settings.get(key))
    assert "PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin" in settings["setenv"]


def test_sshd_rejects_a_broken_config(render_cache, sandbox) -> None:
    config = (render_cache({"use_ssh": True}) / ".devcontainer" / "sshd_config").read_text()
    broken = config.replace("PasswordAuthentication no", "PasswordAuthentication maybe")
    assert broken != config
    assert sshd(sandbox, broken, "-t").returncode != 0


def test_effective_settings_catch_a_password_login(render_cache, sandbox) -> None:
    config = (render_cache({"use_ssh": True}) / ".devcontainer" / "sshd_config").read_text()
    weakened = config.replace("PasswordAuthentication no", "PasswordAuthentication yes")
    assert effective(sandbox, weakened)["passwordauthentication"] == ["yes"]


@pytest.mark.parametrize("answers", WITH_SSH + WITHOUT_SSH, ids=answer_id)
def test_container_side_follows_use_ssh(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    use_ssh = bool(answers.get("use_ssh"))
    assert (project / ".devcontainer" / "sshd_config").is_file() == use_ssh
    assert (project / ".devcontainer" / "start-sshd.sh").is_file() == use_ssh

    dockerfile = (project / ".devcontainer" / "Dockerfile").read_text()
    base, _, rest = dockerfile.partition("\nFROM base AS dev")
    dev, _, train = rest.partition("\nFROM base AS train")
    assert ("openssh-server" in dev) == use_ssh
    assert "openssh-server" not in base + train, "the train image never runs an SSH server"

    config = json5.loads((project / ".devcontainer" / "devcontainer.json").read_text())
    published = [config["runArgs"][i + 1] for i, arg in enumerate(config["runArgs"]) if arg == "-p"]
    assert published == (["127.0.0.1:2222:2222"] if use_ssh else [])
    mounts = json.dumps(config.get("mounts", []))
    assert ("/home/dev/.ssh/authorized_keys,type=bind,readonly" in mounts) == use_ssh
    post_start = config.get("postStartCommand", {})
    assert ("sshd" in post_start) == use_ssh
    if use_ssh:
        assert post_start["sshd"] == "bash .devcontainer/start-sshd.sh"
