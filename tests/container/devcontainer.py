"""Start a dev container from the generated devcontainer.json the way the Dev Containers CLI does.

No Docker engine runs here, so `devcontainer up` cannot. This does its steps with buildah, reading
everything from the project's own .devcontainer/devcontainer.json (JSONC), so a change there is
what gets tested:

1. `updateRemoteUserUID`: the CLI's own scripts/updateUID.Dockerfile (from node_modules) is
   built over the dev image, giving the remote user the host user's UID and GID;
2. the workspace is bind-mounted at /workspaces/<folder> (or `workspaceMount`), the `mounts`
   are made (a named volume starts as a copy of the image's folder, owner included, as Docker
   does), `containerEnv` is set;
3. `onCreateCommand`, `updateContentCommand`, `postCreateCommand` and `postStartCommand` run
   as the remote user in the workspace folder: a string through /bin/sh -c, a list as is, an
   object's entries one after the other.

Host-side parts (`initializeCommand`, `runArgs` such as --shm-size) have no buildah equivalent
and are left out; the doctor reports /dev/shm as it finds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5

from .images import REPO_ROOT, Buildah

UPDATE_UID_DOCKERFILE = (
    REPO_ROOT / "node_modules" / "@devcontainers" / "cli" / "scripts" / "updateUID.Dockerfile"
)
# What `devcontainer up` runs in the container, in this order (postAttachCommand is VS Code's).
CREATE_COMMANDS = (
    "onCreateCommand",
    "updateContentCommand",
    "postCreateCommand",
    "postStartCommand",
)


def read_config(project: Path) -> dict[str, Any]:
    return json5.loads((project / ".devcontainer" / "devcontainer.json").read_text())


def substitute(text: str, variables: dict[str, str], local_env: dict[str, str]) -> str:
    """Replace ${name} and ${localEnv:NAME[:default]}; an unknown name is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        if name.startswith("localEnv:"):
            _, env_name, *default = name.split(":", 2)
            return local_env.get(env_name, default[0] if default else "")
        if name not in variables:
            raise KeyError(f"devcontainer.json variable ${{{name}}} is not emulated")
        return variables[name]

    return re.sub(r"\$\{([^}]+)\}", replace, text)


def parse_mount(mount: str | dict[str, str]) -> dict[str, str]:
    """A mount in either devcontainer.json form ("type=bind,source=..." or an object)."""
    if isinstance(mount, dict):
        return dict(mount)
    parts = mount.split(",")
    fields = dict(part.split("=", 1) for part in parts if "=" in part)
    if "readonly" in parts or "ro" in parts:
        fields["readonly"] = "true"
    if "src" in fields:
        fields["source"] = fields.pop("src")
    if "dst" in fields or "destination" in fields:
        fields["target"] = fields.pop("dst", None) or fields.pop("destination")
    return fields


def commands_of(value: str | list[str] | dict[str, Any]) -> list[list[str]]:
    """A lifecycle command's argv lists, in the order the CLI runs them."""
    if isinstance(value, str):
        return [["/bin/sh", "-c", value]]
    if isinstance(value, list):
        return [list(value)]
    return [argv for entry in value.values() for argv in commands_of(entry)]


@dataclass
class DevContainer:
    """A running dev container: every `run` is a `docker exec` as the remote user."""

    buildah: Buildah
    name: str
    image: str
    config: dict[str, Any]
    workspace_host: Path
    workspace: str
    remote_user: str
    env: dict[str, str]
    volumes: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)

    def run(
        self,
        command: str | list[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 900,
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` (a string goes through /bin/sh -c) and return the finished process."""
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else command
        args = ["run", "--isolation", "chroot", *self.network, "--user", user or self.remote_user]
        args += ["--workingdir", workdir or self.workspace]
        for volume in self.volumes:
            args += ["--volume", volume]
        for key, value in {**self.env, **(env or {})}.items():
            args += ["--env", f"{key}={value}"]
        return self.buildah(*args, self.name, "--", *argv, check=False, timeout=timeout)


def remote_user_of(config: dict[str, Any], image_user: str) -> str:
    """remoteUser, else containerUser, else the image's user: the CLI's order."""
    return config.get("remoteUser") or config.get("containerUser") or image_user or "root"


def update_uid_image(
    buildah: Buildah, image: str, config: dict[str, Any], uid: int, gid: int, scratch: Path
) -> str:
    """The image the CLI would start: `image` with the remote user moved to uid:gid."""
    image_user = buildah.image_config(image).get("User") or "root"
    remote_user = remote_user_of(config, image_user)
    if (
        config.get("updateRemoteUserUID", True) is False
        or remote_user == "root"
        or remote_user.isdigit()
    ):
        return image
    if not UPDATE_UID_DOCKERFILE.is_file():
        raise FileNotFoundError(
            f"{UPDATE_UID_DOCKERFILE} is missing: run `npm ci` (scripts/test.sh does)"
        )
    context = scratch / "update-uid-context"
    context.mkdir(parents=True, exist_ok=True)
    tag = f"{image}-uid{uid}"
    buildah(
        "bud", "--isolation", "chroot", "--pull=never", "--format", "docker", "--layers",
        "-f", str(UPDATE_UID_DOCKERFILE),
        "--build-arg", f"BASE_IMAGE={image}",
        "--build-arg", f"REMOTE_USER={remote_user}",
        "--build-arg", f"NEW_UID={uid}",
        "--build-arg", f"NEW_GID={gid}",
        "--build-arg", f"IMAGE_USER={image_user}",
        "-t", tag, str(context),
    )  # fmt: skip
    return tag


@contextlib.contextmanager
def start(
    buildah: Buildah,
    image: str,
    project: Path,
    scratch: Path,
    *,
    uid: int,
    gid: int,
    local_env: dict[str, str] | None = None,
) -> Iterator[DevContainer]:
    """Create the dev container for `project` from the dev-stage `image`, as user uid:gid on
    the host whose environment is `local_env` (for ${localEnv:...}; default: none set), run
    its lifecycle commands, and remove it afterwards.

    Raises RuntimeError with the command's output when a creation command fails, since a
    failing postCreateCommand is the first thing a user would see.
    """
    config = read_config(project)
    local_env = local_env or {}
    started = update_uid_image(buildah, image, config, uid, gid, scratch)
    image_user = buildah.image_config(started).get("User") or "root"
    remote_user = remote_user_of(config, image_user)
    folder = project.name
    variables = {
        "localWorkspaceFolder": str(project),
        "localWorkspaceFolderBasename": folder,
        "devcontainerId": hashlib.sha256(str(project).encode()).hexdigest()[:16],
    }
    default_folder = f"/workspaces/{folder}"
    workspace = substitute(config.get("workspaceFolder", default_folder), variables, local_env)
    variables["containerWorkspaceFolder"] = workspace
    workspace_mount = parse_mount(
        substitute(
            config.get("workspaceMount", f"type=bind,source={project},target={workspace}"),
            variables,
            local_env,
        )
    )
    container_env = config.get("containerEnv", {})
    env = {key: substitute(value, variables, local_env) for key, value in container_env.items()}

    with buildah.container(started) as name:
        root = buildah.mount(name)
        volumes = [f"{workspace_mount['source']}:{workspace_mount['target']}"]
        for index, raw in enumerate(config.get("mounts", [])):
            mount = {
                key: substitute(value, variables, local_env) if isinstance(value, str) else value
                for key, value in parse_mount(raw).items()
            }
            target = mount["target"]
            if mount.get("type", "volume") == "volume":
                # A new named volume starts as a copy of the image's folder, owner included.
                source = scratch / f"volume-{index}"
                shutil.rmtree(source, ignore_errors=True)
                inside = root / target.lstrip("/")
                if inside.is_dir():
                    subprocess.run(["cp", "-a", str(inside), str(source)], check=True)
                else:
                    source.mkdir(parents=True)
            else:
                source = Path(mount["source"])
            readonly = str(mount.get("readonly", "false")).lower() == "true"
            volumes.append(f"{source}:{target}" + (":ro" if readonly else ""))
        container = DevContainer(
            buildah,
            name,
            started,
            config,
            project,
            workspace,
            remote_user,
            env,
            volumes,
            buildah.network_args(name),
        )
        for key in CREATE_COMMANDS:
            if key not in config:
                continue
            for argv in commands_of(config[key]):
                result = container.run(argv)
                if result.returncode != 0:
                    raise RuntimeError(
                        f"{key} {argv} exited {result.returncode}:\n"
                        f"{(result.stdout + result.stderr)[-6000:]}"
                    )
        yield container
