"""The generated project's scripts/, which CI and developers share, really run.

- smoke.sh: a 2-rank torchrun on CPU through the real entry point, its summary checked;
- lint.sh: ruff passes on a fresh project, and the check fails on leftovers of a conflicted
  update (a .rej file; conflict markers are covered in tests/update);
- build-image.sh and install-cpu.sh: with stand-ins for docker, buildah and python on PATH
  that record their arguments (no container engine here; tests/container builds for real),
  so the exact commands CI runs are pinned: targets, tags, registry cache, push.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.project

TOOLS = Path(sys.executable).parent  # ruff and the other tools of this test run


def run(project: Path, *command: str, env: dict[str, str] | None = None, timeout: int = 300):
    return subprocess.run(
        list(command), cwd=project, env=env or os.environ.copy(),
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def fake_tools(bin_dir: Path, log: Path, *names: str, docker_driver: str = "docker") -> None:
    """Executables that append their argv to `log`; `docker buildx inspect` reports a driver
    and `docker buildx use` fails, as on a machine where no builder was made yet."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        script = bin_dir / name
        script.write_text(
            "#!/usr/bin/env bash\n"
            f'printf "%s\\n" "{name} $*" >> {shlex.quote(str(log))}\n'
            f'if [[ "$1 $2" == "buildx inspect" ]]; then printf "Name: x\\nDriver: '
            f'{docker_driver}\\n"; fi\n'
            'if [[ "$1 $2" == "buildx use" ]]; then exit 1; fi\n'
        )
        script.chmod(0o755)


def logged(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize(
    ("distributed", "expected"),
    [
        ("single_node", "smoke.sh: 2 ranks, 20 steps, loss"),
        ("none", "smoke.sh: 1 process, 20 steps"),
    ],
)
def test_smoke_script_trains_as_the_project_runs(
    render_cache, project_python: Path, distributed: str, expected: str
) -> None:
    """Two ranks under torchrun for a several-GPU project; one process, no torchrun, for a
    one-GPU project (distributed: none), as its CI runs it."""
    project = render_cache({"distributed": distributed})
    env = {
        **os.environ,
        "PATH": f"{project_python.parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(project / "src"),
    }
    result = run(project, "bash", "scripts/smoke.sh", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert expected in result.stdout


def test_lint_passes_on_a_fresh_project_and_fails_on_rejected_hunks(
    render_cache, tmp_path: Path
) -> None:
    env = {**os.environ, "PATH": f"{TOOLS}:{os.environ['PATH']}"}
    project = render_cache({})
    result = run(project, "bash", "scripts/lint.sh", env=env)
    assert result.returncode == 0, result.stdout + result.stderr

    copy = tmp_path / "project"
    subprocess.run(["cp", "-r", str(project), str(copy)], check=True)
    (copy / "README.md.rej").write_text("@@ -1 +1 @@\n-old\n+new\n")
    result = run(copy, "bash", "scripts/lint.sh", env=env)
    assert result.returncode != 0
    assert "README.md.rej" in result.stderr


def test_build_script_with_docker_as_ci_runs_it(render_cache, tmp_path: Path) -> None:
    project = render_cache({})
    log = tmp_path / "calls.log"
    fake_tools(tmp_path / "bin", log, "docker")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    # What the GitHub workflow runs on main: owner names may have capitals.
    result = run(
        project, "bash", "scripts/build-image.sh", "--image", "ghcr.io/Acme/Proj",
        "--tag", "0123abcd", "--tag", "latest", "--cache", "--push", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    calls = logged(log)
    assert "docker buildx inspect" in calls[0]
    # Docker's default builder cannot export a registry cache: a container builder is made.
    creates = [call for call in calls if "buildx create --use --name" in call]
    assert len(creates) == 1 and "--driver docker-container" in creates[0]
    builds = [call for call in calls if call.startswith("docker buildx build")]
    assert len(builds) == 2
    train, dev = builds
    for target, call in (("train", train), ("dev", dev)):
        assert f"--file .devcontainer/Dockerfile --target {target}" in call
        assert "--platform linux/amd64" in call
        assert f"--tag ghcr.io/acme/proj:{target}-0123abcd" in call
        assert f"--tag ghcr.io/acme/proj:{target}-latest" in call
        assert f"--cache-from type=registry,ref=ghcr.io/acme/proj:cache-{target}" in call
        assert f"--cache-to type=registry,ref=ghcr.io/acme/proj:cache-{target},mode=max" in call
        assert call.endswith("--push .")
    assert "--tag ghcr.io/acme/proj:latest " in train
    assert "--tag ghcr.io/acme/proj:latest " not in dev


def test_build_script_on_a_pull_request_neither_pushes_nor_writes_cache(
    render_cache, tmp_path: Path
) -> None:
    project = render_cache({})
    log = tmp_path / "calls.log"
    fake_tools(tmp_path / "bin", log, "docker")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    result = run(project, "bash", "scripts/build-image.sh", "--target", "train", "--cache", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    (build,) = [call for call in logged(log) if call.startswith("docker buildx build")]
    assert "--target train" in build and "--cache-from" in build
    assert "--cache-to" not in build and "--push" not in build
    # Loaded into Docker's image store, where the GPU job's `docker run` finds it.
    assert build.endswith("--load .")


def test_build_script_with_buildah_as_gitlab_runs_it(render_cache, tmp_path: Path) -> None:
    project = render_cache({"ci_provider": "gitlab", "image_family": "ngc"})
    log = tmp_path / "calls.log"
    fake_tools(tmp_path / "bin", log, "buildah")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "ENGINE": "buildah"}
    result = run(
        project, "bash", "scripts/build-image.sh", "--image", "registry.example.com/g/p",
        "--tag", "abc123", "--cache", "--push", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    calls = logged(log)
    builds = [call for call in calls if call.startswith("buildah build")]
    assert len(builds) == 2
    for call in builds:
        # The docker format keeps the Dockerfile's SHELL (bash, pipefail); OCI would drop it.
        assert "--format docker --layers --file .devcontainer/Dockerfile" in call
        assert "--cache-from registry.example.com/g/p/cache" in call
        assert "--cache-to registry.example.com/g/p/cache" in call
    pushes = [call for call in calls if call.startswith("buildah push")]
    assert pushes == [
        "buildah push registry.example.com/g/p:train-abc123",
        "buildah push registry.example.com/g/p:dev-abc123",
    ]


def test_build_script_rejects_unknown_arguments(render_cache) -> None:
    result = run(render_cache({}), "bash", "scripts/build-image.sh", "--target", "prod")
    assert result.returncode == 2 and "--target must be dev, train or all" in result.stderr


@pytest.mark.parametrize(
    ("task_type", "companions"), [("cv", " torchvision"), ("nlp", ""), ("audio", " torchaudio")]
)
def test_install_cpu_takes_torch_and_its_companions_from_the_cpu_index_first(
    render_cache, tmp_path: Path, task_type: str, companions: str
) -> None:
    """torchvision (cv) and torchaudio (audio) come from the same CPU index in the same pip call
    as torch, so pip picks the build made for that torch (tests/project/test_companions.py runs
    the tests that need them)."""
    project = render_cache({"task_type": task_type})
    log = tmp_path / "calls.log"
    fake_tools(tmp_path / "bin", log, "python")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    result = run(project, "bash", "scripts/install-cpu.sh", "torch==2.14.1", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert logged(log) == [
        "python -m pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1"
        + companions,
        "python -m pip install --require-hashes -r requirements/lock/dev.txt",
        "python -m pip install --no-deps -e .",
    ]
    missing = run(project, "bash", "scripts/install-cpu.sh", env=env)
    assert missing.returncode != 0 and "usage: install-cpu.sh TORCH_SPEC" in missing.stderr
