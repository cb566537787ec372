"""The `_tasks` hooks, run as copier runs them: `python hooks/<hook>.py ...` in a subprocess.

- init_git: makes a fresh project a git repository with one commit, so `copier update` works
  later. Git runs against a temporary HOME with no system config and a ceiling directory, so
  neither this machine's git identity nor a repository above the temp folder leaks in.
- check_host_gpu: a fake `nvidia-smi` on PATH prints canned GPUs; against a rendered project's
  stack.env, the hook is silent for GPUs in the range that the image runs, and otherwise says
  whether the image runs them and which recopy includes them; it always exits 0.
- Finally the whole flow through copier with tasks on: a clean, committed project.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import plumbum
import pytest
from conftest import REPO_ROOT, Render, render_project

INIT_GIT = REPO_ROOT / "hooks" / "init_git.py"
CHECK_HOST_GPU = REPO_ROOT / "hooks" / "check_host_gpu.py"
FIRST_COMMIT = "Initial commit from copier-pytorch-cuda"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
}


# --- init_git ---------------------------------------------------------------------------------


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    """An environment where git sees no identity, no user or system config, and no
    repository above tmp_path. Tests add an identity where they want one."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") and key != "EMAIL"
    }
    # Never fall back to an identity guessed from the user name and host name.
    (home / ".gitconfig").write_text("[user]\n\tuseConfigOnly = true\n")
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CEILING_DIRECTORIES=str(tmp_path),
    )
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder that looks like a freshly generated project."""
    path = tmp_path / "work" / "my-project"
    (path / "src" / "my_project").mkdir(parents=True)
    (path / "src" / "my_project" / "__init__.py").write_text("")
    (path / "README.md").write_text("# My project\n")
    (path / ".copier-answers.yml").write_text("_src_path: copier-pytorch-cuda\n")
    return path


def run_init_git(
    cwd: Path, env: dict[str, str], *args: str, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(INIT_GIT), *args],
        cwd=cwd,
        env=env,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def git(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def commits(path: Path, env: dict[str, str]) -> list[str]:
    result = git(path, env, "log", "--format=%s")
    return result.stdout.splitlines() if result.returncode == 0 else []


def committed_files(path: Path, env: dict[str, str]) -> set[str]:
    return set(git(path, env, "ls-tree", "-r", "--name-only", "HEAD").stdout.split())


PROJECT_FILES = {"README.md", ".copier-answers.yml", "src/my_project/__init__.py"}


def test_init_git_commits_with_an_identity_from_the_environment(
    project: Path, git_env: dict[str, str]
) -> None:
    env = {**git_env, **IDENTITY}
    result = run_init_git(project, env)

    assert result.returncode == 0, result.stderr
    assert (project / ".git").is_dir()
    assert commits(project, env) == [FIRST_COMMIT]
    assert committed_files(project, env) == PROJECT_FILES
    assert git(project, env, "status", "--porcelain").stdout == ""
    author = git(project, env, "log", "-1", "--format=%an <%ae>").stdout.strip()
    assert author == "Test Author <author@example.com>"


def test_init_git_commits_with_an_identity_from_git_config(
    project: Path, git_env: dict[str, str]
) -> None:
    config = Path(git_env["HOME"]) / ".gitconfig"
    config.write_text("[user]\n\tname = Config User\n\temail = config@example.com\n")

    result = run_init_git(project, git_env)

    assert result.returncode == 0, result.stderr
    assert commits(project, git_env) == [FIRST_COMMIT]
    assert committed_files(project, git_env) == PROJECT_FILES
    assert git(project, git_env, "status", "--porcelain").stdout == ""


def test_init_git_is_idempotent(project: Path, git_env: dict[str, str]) -> None:
    env = {**git_env, **IDENTITY}
    assert run_init_git(project, env).returncode == 0
    head = git(project, env, "rev-parse", "HEAD").stdout

    again = run_init_git(project, env)

    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert commits(project, env) == [FIRST_COMMIT]
    assert git(project, env, "rev-parse", "HEAD").stdout == head


def test_init_git_leaves_a_project_inside_a_repository_alone(
    tmp_path: Path, git_env: dict[str, str]
) -> None:
    env = {**git_env, **IDENTITY}
    outer = tmp_path / "work" / "monorepo"
    outer.mkdir(parents=True)
    assert git(outer, env, "init", "--quiet").returncode == 0
    (outer / "existing.txt").write_text("x\n")
    git(outer, env, "add", "existing.txt")
    git(outer, env, "commit", "--quiet", "-m", "outer")
    inner = outer / "packages" / "my-project"
    inner.mkdir(parents=True)
    (inner / "README.md").write_text("# inner\n")

    result = run_init_git(inner, env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert not (inner / ".git").exists()
    assert commits(outer, env) == ["outer"]
    assert git(outer, env, "diff", "--cached", "--name-only").stdout == "", "nothing staged"


def test_init_git_no_does_nothing(project: Path, git_env: dict[str, str]) -> None:
    result = run_init_git(project, {**git_env, **IDENTITY}, "--no")

    assert result.returncode == 0
    assert result.stdout == ""
    assert not (project / ".git").exists()


def test_init_git_takes_the_project_path_as_an_argument(
    tmp_path: Path, project: Path, git_env: dict[str, str]
) -> None:
    env = {**git_env, **IDENTITY}
    result = run_init_git(tmp_path, env, "--yes", str(project))

    assert result.returncode == 0, result.stderr
    assert commits(project, env) == [FIRST_COMMIT]
    assert not (tmp_path / ".git").exists()


def test_init_git_without_identity_stages_and_says_how_to_finish(
    project: Path, git_env: dict[str, str]
) -> None:
    result = run_init_git(project, git_env)

    assert result.returncode == 0, result.stderr
    assert (project / ".git").is_dir()
    assert commits(project, git_env) == []
    staged = git(project, git_env, "diff", "--cached", "--name-only").stdout.split()
    assert set(staged) == PROJECT_FILES
    for command in (
        'git config --global user.name "Your Name"',
        'git config --global user.email "you@example.com"',
        f'git commit -m "{FIRST_COMMIT}"',
    ):
        assert command in result.stdout

    # The printed commands do finish the job.
    env = {**git_env, **IDENTITY}
    assert git(project, env, "commit", "--quiet", "-m", FIRST_COMMIT).returncode == 0
    assert commits(project, env) == [FIRST_COMMIT]
    assert git(project, env, "status", "--porcelain").stdout == ""


def test_init_git_never_prompts_without_a_terminal(project: Path, git_env: dict[str, str]) -> None:
    # stdin is not a TTY (copier run from a script or CI): the default (yes) applies at once.
    # A prompt would read EOF from /dev/null and fail, or hang until the timeout.
    result = run_init_git(project, {**git_env, **IDENTITY}, stdin=subprocess.DEVNULL)

    assert result.returncode == 0, result.stderr
    assert "?" not in result.stdout
    assert commits(project, git_env) == [FIRST_COMMIT]


def load_hook(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"hook_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("reply", "made"), [(True, True), (False, False)])
def test_init_git_asks_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
    project: Path,
    git_env: dict[str, str],
    reply: bool,
    made: bool,
) -> None:
    hook = load_hook(INIT_GIT)
    questions: list[str] = []

    def ask(question: str) -> bool:
        questions.append(question)
        return reply

    for key in [k for k in os.environ if k.startswith("GIT_") or k == "EMAIL"]:
        monkeypatch.delenv(key)
    for key, value in {**git_env, **IDENTITY}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(hook, "ask", ask)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)

    assert hook.main([str(project)]) == 0
    assert len(questions) == 1 and "copier update" in questions[0]
    assert (project / ".git").exists() is made

    # --yes never asks.
    questions.clear()
    assert hook.main(["--yes", str(project)]) == 0
    assert questions == []
    assert commits(project, {**git_env, **IDENTITY}) == [FIRST_COMMIT]


# --- check_host_gpu ---------------------------------------------------------------------------

QUERY_ARGS = "--query-gpu=name,compute_cap --format=csv,noheader"
RECOPY = "copier recopy --trust --overwrite --defaults --data "
# Rendered once per module: the project's stack.env is what the hook reads.
PROJECTS = {
    "default": {},  # Ampere to Blackwell, torch 2.14 on CUDA 13.2 (7.5 ... 12.0+PTX)
    "volta": {"gpu_generation": "volta", "newest_gpu_generation": "volta"},  # cu126
    "volta-hopper": {"gpu_generation": "volta", "newest_gpu_generation": "hopper"},  # cu126
}


@pytest.fixture(scope="module")
def hook_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hook-projects")
    return {key: render_project(root / key, answers) for key, answers in PROJECTS.items()}


def fake_nvidia_smi(bin_dir: Path, output: str, code: int = 0) -> Path:
    """An `nvidia-smi` that records its arguments and prints `output`, using only shell
    builtins: PATH holds nothing but the fakes, so no real tool of this machine is found."""
    bin_dir.mkdir(exist_ok=True)
    log = bin_dir / "nvidia-smi.args"
    lines = " ".join(shell_quote(line) for line in output.split("\n"))
    script = bin_dir / "nvidia-smi"
    script.write_text(
        f"#!/bin/sh\necho \"$*\" >> {shell_quote(str(log))}\nprintf '%s\\n' {lines}\nexit {code}\n"
    )
    script.chmod(0o755)
    return log


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def run_check(bin_dir: Path, project: Path) -> subprocess.CompletedProcess[str]:
    bin_dir.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, str(CHECK_HOST_GPU), f"--destination={project}"],
        env={**os.environ, "PATH": str(bin_dir)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("project", "gpu"),
    [
        ("volta", "Tesla V100-SXM2-32GB, 7.0"),
        ("default", "NVIDIA A100-SXM4-80GB, 8.0"),
        ("default", "NVIDIA A10G, 8.6"),
        ("default", "NVIDIA L4, 8.9"),
        ("default", "NVIDIA H100 80GB HBM3, 9.0"),
        ("default", "NVIDIA B200, 10.0"),
        ("default", "NVIDIA B300 SXM6 AC, 10.3"),
        ("default", "NVIDIA GeForce RTX 5090, 12.0"),
        ("default", "NVIDIA GB10, 12.1"),
        ("volta-hopper", "NVIDIA H100 80GB HBM3, 9.0"),
    ],
)
def test_check_host_gpu_in_the_range_and_the_image_is_silent(
    tmp_path: Path, hook_projects: dict[str, Path], project: str, gpu: str
) -> None:
    log = fake_nvidia_smi(tmp_path / "bin", gpu)

    result = run_check(tmp_path / "bin", hook_projects[project])

    assert result.returncode == 0
    assert result.stdout == "" and result.stderr == ""
    assert log.read_text().strip() == QUERY_ARGS


def test_check_host_gpu_older_gpu_the_image_still_runs(
    tmp_path: Path, hook_projects: dict[str, Path]
) -> None:
    fake_nvidia_smi(tmp_path / "bin", "Tesla T4, 7.5")

    result = run_check(tmp_path / "bin", hook_projects["default"])

    assert result.returncode == 0
    assert "Tesla T4" in result.stdout and "runs this project's image" in result.stdout
    assert "outside the project's GPU range (Ampere to Blackwell)" in result.stdout
    assert f"{RECOPY}gpu_generation=turing" in result.stdout


def test_check_host_gpu_older_gpu_the_image_cannot_run(
    tmp_path: Path, hook_projects: dict[str, Path]
) -> None:
    fake_nvidia_smi(tmp_path / "bin", "Tesla V100-SXM2-32GB, 7.0")

    result = run_check(tmp_path / "bin", hook_projects["default"])

    assert result.returncode == 0
    assert "cannot run this project's image" in result.stdout
    assert f"{RECOPY}gpu_generation=volta" in result.stdout


def test_check_host_gpu_newer_gpu_the_image_cannot_run(
    tmp_path: Path, hook_projects: dict[str, Path]
) -> None:
    """The case the generation order alone got wrong: a Blackwell host, a Volta-to-Hopper
    image built for CUDA 12.6 (no sm_100): it does not run, whatever 'newer' suggests."""
    fake_nvidia_smi(tmp_path / "bin", "NVIDIA B200, 10.0")

    result = run_check(tmp_path / "bin", hook_projects["volta-hopper"])

    assert result.returncode == 0
    assert "cannot run this project's image" in result.stdout
    assert "runs this project's image" not in result.stdout
    assert f"{RECOPY}newest_gpu_generation=blackwell" in result.stdout


def test_check_host_gpu_newer_gpu_the_image_runs_outside_the_range(
    tmp_path: Path, hook_projects: dict[str, Path]
) -> None:
    fake_nvidia_smi(tmp_path / "bin", "NVIDIA H100 80GB HBM3, 9.0")

    result = run_check(tmp_path / "bin", hook_projects["volta"])

    assert result.returncode == 0
    assert "runs this project's image (9.0 code)" in result.stdout
    assert f"{RECOPY}newest_gpu_generation=hopper" in result.stdout


def test_check_host_gpu_unsupported_gpu(tmp_path: Path, hook_projects: dict[str, Path]) -> None:
    fake_nvidia_smi(tmp_path / "bin", "NVIDIA GeForce GTX 1080 Ti, 6.1")

    default = run_check(tmp_path / "bin", hook_projects["default"])
    volta = run_check(tmp_path / "bin", hook_projects["volta"])

    assert "GTX 1080 Ti" in default.stdout and "cannot run" in default.stdout
    assert "older than volta (7.0)" in default.stdout
    # CUDA 12.6 still carries sm_60: it runs, but the template does not promise it.
    assert "still has kernels for it (6.0)" in volta.stdout
    assert "copier recopy" not in default.stdout + volta.stdout


def test_check_host_gpu_future_gpu_through_ptx(
    tmp_path: Path, hook_projects: dict[str, Path]
) -> None:
    fake_nvidia_smi(tmp_path / "bin", "NVIDIA Future GPU, 13.0")

    result = run_check(tmp_path / "bin", hook_projects["default"])

    assert "only through PTX that the driver compiles from 12.0" in result.stdout


def test_check_host_gpu_reports_each_gpu_once(
    tmp_path: Path, hook_projects: dict[str, Path]
) -> None:
    fake_nvidia_smi(
        tmp_path / "bin",
        "NVIDIA A100-SXM4-80GB, 8.0\nNVIDIA A100-SXM4-80GB, 8.0\nTesla T4, 7.5\nTesla T4, 7.5",
    )

    result = run_check(tmp_path / "bin", hook_projects["default"])

    assert result.returncode == 0
    assert "A100" not in result.stdout
    assert result.stdout.count("copier recopy") == 1


def test_check_host_gpu_without_nvidia_smi(tmp_path: Path, hook_projects: dict[str, Path]) -> None:
    result = run_check(tmp_path / "empty-bin", hook_projects["default"])

    assert result.returncode == 0
    assert result.stdout == "" and result.stderr == ""


def test_check_host_gpu_with_a_failing_nvidia_smi(
    tmp_path: Path, hook_projects: dict[str, Path]
) -> None:
    # nvidia-smi exits 9 when the driver cannot be reached (e.g. inside a container without GPUs)
    log = fake_nvidia_smi(
        tmp_path / "bin",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
        code=9,
    )

    result = run_check(tmp_path / "bin", hook_projects["default"])

    assert result.returncode == 0
    assert result.stdout == "" and result.stderr == ""
    assert log.exists(), "the fake was called"


def test_check_host_gpu_ignores_garbage_lines(
    tmp_path: Path, hook_projects: dict[str, Path]
) -> None:
    fake_nvidia_smi(tmp_path / "bin", "\nNo devices were found\n")

    result = run_check(tmp_path / "bin", hook_projects["default"])

    assert result.returncode == 0
    assert result.stdout == "" and result.stderr == ""


def test_check_host_gpu_without_stack_env_is_silent(tmp_path: Path) -> None:
    fake_nvidia_smi(tmp_path / "bin", "Tesla T4, 7.5")

    result = run_check(tmp_path / "bin", tmp_path / "not-a-project")

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# --- the whole flow: copier copy with tasks ---------------------------------------------------


def test_copy_with_tasks_gives_a_clean_committed_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, render: Render, git_env: dict[str, str]
) -> None:
    """What `copier update` needs later: a git repository, one commit, nothing uncommitted."""
    # No real GPU or driver of this machine shapes the result.
    bin_dir = tmp_path / "fake-bin"
    log = fake_nvidia_smi(bin_dir, "NVIDIA A100-SXM4-80GB, 8.0")
    env = {**git_env, **IDENTITY, "PATH": f"{bin_dir}{os.pathsep}{git_env['PATH']}"}
    # copier runs tasks with plumbum's copy of the environment, taken when plumbum was
    # imported: setting os.environ alone would not reach the hooks.
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with plumbum.local.env():
        plumbum.local.env.clear()
        plumbum.local.env.update(env)
        project = render({"gpu_generation": "ampere"}, tasks=True)

    assert log.read_text().strip() == QUERY_ARGS, "check_host_gpu ran as a task"
    assert (project / ".git").is_dir()
    assert git(project, env, "rev-parse", "--show-toplevel").stdout.strip() == str(project)
    assert commits(project, env) == [FIRST_COMMIT]
    author = git(project, env, "log", "-1", "--format=%an <%ae>").stdout.strip()
    assert author == "Test Author <author@example.com>", "the identity came from the environment"
    assert git(project, env, "status", "--porcelain", "--ignored=no").stdout == ""
    files = committed_files(project, env)
    assert ".copier-answers.yml" in files
    assert ".devcontainer/Dockerfile" in files
    # Every rendered file is in the commit (nothing ignored by accident).
    rendered = {
        str(p.relative_to(project))
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }
    assert rendered == files
