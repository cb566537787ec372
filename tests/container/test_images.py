"""The generated Dockerfile built for real and used as a user would, for every case: each task
type on each base image layout (conftest.CASES, standins.py).

The dev stage is started as VS Code would start it (devcontainer.json read, not restated here),
then the project's own commands run inside: the doctor, a 2-rank CPU torchrun. The train stage
is checked for what it must not contain and run as a cluster would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import HOST_GID, HOST_UID, PRIVATE_FILES, SECRET, Images, Project, run_in_image
from .devcontainer import DevContainer
from .images import REPO_ROOT, Buildah

pytestmark = [pytest.mark.container, pytest.mark.xdist_group("container")]

TRAIN_STEPS = 3
TORCH_PROBE = (
    "python -c 'import json, torch; print(json.dumps([torch.__version__, torch.__file__]))'"
)
# Import names of the task packages whose distribution name differs.
IMPORT_NAMES = {"pillow": "PIL", "opencv-python-headless": "cv2"}


def task_profile(task_type: str) -> dict:
    profiles = yaml.safe_load((REPO_ROOT / "data" / "task-profiles.yml").read_text())
    return profiles["task_profiles"]["default"][task_type]


def torchrun(package: str, output_dir: str, *options: str) -> str:
    """The documented training command: 2 CPU ranks (gloo), a few steps."""
    return (
        "OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node=2 "
        f"-m {package}.train --device cpu --max-steps {TRAIN_STEPS} --output-dir {output_dir} "
        + " ".join(options)
    )


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    """A failed command's exit status and the end of its output, for assertion messages."""
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n"
        f"--- stderr\n{result.stderr[-4000:]}"
    )


# --- the images -------------------------------------------------------------------------------


def test_images_run_as_a_non_root_user(buildah: Buildah, images: Images) -> None:
    for build in (images.dev, images.train):
        user = buildah.image_config(build.image).get("User", "")
        assert user and user.split(":")[0] not in ("", "0", "root"), (build.image, user)


def test_task_packages_work_in_the_image(buildah: Buildah, images: Images) -> None:
    """The task's Python packages import, so the system libraries they load are there too."""
    profile = task_profile(images.project.task_type)
    modules = [IMPORT_NAMES.get(name, name.replace("-", "_")) for name in profile["pip_packages"]]
    command = f"python -c 'import {', '.join(modules)}'"
    if "ffmpeg" in profile["apt_packages"]:
        command += " && ffmpeg -hide_banner -version"
    result = run_in_image(buildah, images.train.image, command)
    assert result.returncode == 0, output_of(result)


# --- the dev container ------------------------------------------------------------------------


def test_dev_container_user_is_the_host_user(dev_container: DevContainer) -> None:
    result = dev_container.run("id -u; id -un; echo $HOME")
    assert result.returncode == 0, output_of(result)
    uid, name, home = result.stdout.split()
    assert uid == str(HOST_UID) and name == dev_container.remote_user != "root"
    assert home == f"/home/{name}"


def test_post_create_installed_the_workspace_editable(
    dev_container: DevContainer, images: Images
) -> None:
    """postCreateCommand's `pip install -e` put the workspace into the image's venv, as the
    host user whose UID the container's user took: not into ~/.local, where pip goes on its own
    when the venv is not writable ("Defaulting to user installation")."""
    package = images.project.package
    result = dev_container.run(
        f"python -c 'import {package}; print({package}.__file__)'"
        f" && pip show --files {package} | sed -n 's/^Location: //p'",
        workdir="/",
    )
    assert result.returncode == 0, output_of(result)
    module, location = result.stdout.split()
    assert module == f"{dev_container.workspace}/src/{package}/__init__.py"
    assert location.startswith("/opt/venv/"), f"the project was installed into {location}"
    user_site = dev_container.run("ls ~/.local/lib 2>/dev/null || true")
    assert user_site.stdout.strip() == "", f"pip installed into ~/.local: {user_site.stdout}"


def test_doctor_reports_cpu_mode(
    dev_container: DevContainer, base_torch: str, images: Images
) -> None:
    result = dev_container.run(f"python -m {images.project.package}.doctor --json --no-nccl")
    assert result.returncode == 0, output_of(result)
    report = json.loads(result.stdout)
    checks = {check["name"]: check for check in report["checks"]}
    assert report["ok"] is True and report["mode"] == "cpu", report
    assert report["versions"]["torch"] == base_torch
    assert checks["workspace"]["status"] == "OK", checks["workspace"]
    assert not [check for check in report["checks"] if check["status"] == "FAIL"]


def test_torchrun_two_cpu_ranks(dev_container: DevContainer, images: Images) -> None:
    result = dev_container.run(
        torchrun(images.project.package, "outputs/container-smoke"), timeout=600
    )
    assert result.returncode == 0, output_of(result)
    summary_file = images.project.path / "outputs" / "container-smoke" / "summary.json"
    summary = json.loads(summary_file.read_text())
    assert summary["world_size"] == 2 and summary["step"] == TRAIN_STEPS, summary
    assert summary["loss"] == summary["loss"], "loss is NaN"


def test_files_made_in_the_workspace_belong_to_the_host_user(
    dev_container: DevContainer, images: Images
) -> None:
    """Whatever the container wrote into the workspace (postCreateCommand's egg-info, the
    training run's outputs, a new file) belongs to the host user, not root or UID 1000."""
    result = dev_container.run("touch made-in-container && mkdir -p notes && touch notes/a.md")
    assert result.returncode == 0, output_of(result)
    wrong = []
    for folder, folders, files in os.walk(images.project.path):
        for name in [*folders, *files]:
            path = Path(folder) / name
            if path.lstat().st_uid != HOST_UID:
                wrong.append(f"{path.relative_to(images.project.path)} uid {path.lstat().st_uid}")
    assert not wrong, wrong[:20]
    assert (images.project.path / "made-in-container").is_file()


def test_pip_installs_keep_the_base_images_torch(
    buildah: Buildah, dev_container: DevContainer, images: Images, base_torch: str
) -> None:
    """After the image's pip installs and postCreateCommand, torch is the base image's own
    (same version, loaded from where the base image has it: /opt/conda, or the system Python's
    dist-packages), in the dev container and in the train image."""
    prefix = images.project.layout.torch_prefix
    for result in (
        dev_container.run(TORCH_PROBE),
        run_in_image(buildah, images.train.image, TORCH_PROBE),
    ):
        assert result.returncode == 0, output_of(result)
        version, path = json.loads(result.stdout)
        assert version == base_torch
        assert path.startswith(prefix), f"torch loaded from {path}, not from the image's {prefix}"


def test_pip_refuses_to_replace_torch(
    dev_container: DevContainer, images: Images, base_torch: str
) -> None:
    """An install that needs another torch fails and names the image's pin; an upgrade is a
    no-op; another package installs; torch is unchanged afterwards."""
    major_minor = ".".join(base_torch.split(".")[:2])
    refused = dev_container.run(f"pip install 'torch<{major_minor}'")
    assert refused.returncode != 0, output_of(refused)
    pin = f"(constraint) torch=={base_torch}"
    assert pin in refused.stdout + refused.stderr, output_of(refused)
    upgraded = dev_container.run("pip install --upgrade torch")
    assert upgraded.returncode == 0, output_of(upgraded)
    # The pin does not get in the way of ordinary installs.
    other = dev_container.run("pip install tomli-w")
    assert other.returncode == 0, output_of(other)
    after = dev_container.run(TORCH_PROBE)
    assert json.loads(after.stdout)[0] == base_torch


def test_the_base_images_own_pip_constraints_still_apply(
    buildah: Buildah, dev_container: DevContainer, images: Images
) -> None:
    """Constraints the base image set (NGC: PIP_CONSTRAINT=/etc/pip/constraint.txt, which pins
    numpy too) still hold in the container, next to the image's torch pin; on bases without any,
    nothing but the torch pin is added."""
    base_env = buildah.image_config(images.base).get("Env") or []
    base_constraint = next(
        (item.split("=", 1)[1] for item in base_env if item.startswith("PIP_CONSTRAINT=")), None
    )
    pins = dev_container.run("cat /etc/pip/image-constraints.txt")
    assert pins.returncode == 0, output_of(pins)
    references = [line for line in pins.stdout.splitlines() if line.startswith("-c ")]
    if base_constraint is None:
        assert references == [], pins.stdout
        return
    assert references == [f"-c {base_constraint}"], pins.stdout
    numpy = dev_container.run("python -c 'import numpy; print(numpy.__version__)'")
    assert numpy.returncode == 0, output_of(numpy)
    refused = dev_container.run(f"pip install 'numpy!={numpy.stdout.strip()}'")
    assert refused.returncode != 0, output_of(refused)
    assert f"(constraint) numpy=={numpy.stdout.strip()}" in refused.stdout + refused.stderr


# --- the train image --------------------------------------------------------------------------


def test_train_image_holds_no_private_files(
    buildah: Buildah, train_container: str, images: Images
) -> None:
    """.env, data, checkpoints, run outputs and the git history lying in the project folder
    stay out of the image, while the code is in it."""
    project: Project = images.project
    root = buildah.mount(train_container)
    app = root / "opt" / project.package
    assert (app / "src" / project.package / "train.py").is_file()
    assert (app / "configs" / "tiny.yaml").is_file()
    names = {Path(relative).name for relative in PRIVATE_FILES} - {".env"}
    found = []
    for folder, folders, files in os.walk(root):
        if Path(folder) in (root / "proc", root / "sys", root / "dev"):
            folders.clear()
            continue
        for name in files:
            path = Path(folder) / name
            if name in names or (name.startswith(".env") and not path.is_relative_to(root / "usr")):
                found.append(str(path.relative_to(root)))
    assert not found, found
    assert not (app / ".git").exists()
    for folder in (app, root / "opt" / "venv", root / "home"):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 1_000_000:
                assert SECRET.encode() not in path.read_bytes(), path.relative_to(root)


def test_train_image_trains(
    buildah: Buildah, train_container: str, images: Images, tmp_path: Path
) -> None:
    """The installed package (not the source tree) runs: the doctor as the image's own user (a
    cluster's default), and torchrun as the README's plain `docker run` has it, as the host
    user with an outputs folder from the host and a config file from the image."""
    package = images.project.package
    network = buildah.network_args(train_container)
    doctor = buildah(
        "run", "--isolation", "chroot", *network, train_container, "--",
        "python", "-m", f"{package}.doctor", "--json", "--no-nccl",
        check=False,
    )  # fmt: skip
    assert doctor.returncode == 0, output_of(doctor)
    assert json.loads(doctor.stdout)["mode"] == "cpu"
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    os.chown(outputs, HOST_UID, HOST_GID)
    trained = buildah(
        "run", "--isolation", "chroot", *network,
        "--user", f"{HOST_UID}:{HOST_GID}", "--volume", f"{outputs}:/outputs",
        train_container, "--", "/bin/sh", "-c",
        torchrun(package, "/outputs", "--config", "configs/tiny.yaml"),
        check=False, timeout=600,
    )  # fmt: skip
    assert trained.returncode == 0, output_of(trained)
    summary = json.loads((outputs / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["step"] == TRAIN_STEPS
    assert {path.stat().st_uid for path in outputs.rglob("*")} == {HOST_UID}
