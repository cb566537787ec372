"""Validate level: the multi-node launchers under deploy/ (distributed == multi_node).

- which launchers a project gets: deploy/ only for multi_node; slurm/ and kubernetes/ by the
  cluster answer;
- deploy/slurm/train.sbatch: shellcheck-clean; its launch line, printed by the script itself
  (TRAIN_LAUNCH=print) inside a faked two-node allocation, is srun + pyxis on the project's
  image with torchrun meeting at a c10d rendezvous on the first node; the CPU path (device and
  processes per node); the default output folder, unique beyond the job id and found again by
  a requeued job; a 1024-name node list; bad settings refused in one line;
- deploy/kubernetes/trainjob.yaml: Kubeflow Trainer's TrainJob schema (v2.3.0), made strict so a
  misspelled key fails here as it would fail kubectl's strict field validation; the pod that the
  torch-distributed runtime builds from it, and the outputs PVC: kubernetes-validate --strict;
- launch values come from the answers and are typed once: the image, /dev/shm, the package.

Each validator is also shown a broken file once. Whether the launch commands really train is
the generated project's own tests/test_launchers.py (two local "nodes"), run at project level,
and, for the sbatch script, tests/cluster (a real two-node Slurm).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from answers import all_answer_sets, answer_id
from conftest import tool, vendored

ANSWER_SETS = all_answer_sets()
MULTI_NODE = [answers for answers in ANSWER_SETS if answers.get("distributed") == "multi_node"]
WITH_SLURM = [answers for answers in MULTI_NODE if answers.get("cluster", "both") != "kubernetes"]
WITH_KUBERNETES = [answers for answers in MULTI_NODE if answers.get("cluster", "both") != "slurm"]

SBATCH = Path("deploy/slurm/train.sbatch")
TRAINJOB = Path("deploy/kubernetes/trainjob.yaml")
PVC = Path("deploy/kubernetes/outputs-pvc.yaml")

# A faked two-node allocation, as sbatch would describe it to the script.
SLURM_ENV = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "train",
    "SLURM_JOB_NUM_NODES": "2",
    "SLURM_JOB_NODELIST": "gpu-a,gpu-b",
    "SLURM_GPUS_ON_NODE": "8",
    "SLURM_CPUS_ON_NODE": "96",
    "SLURM_SUBMIT_DIR": "/shared/me/project",
}
# Stands in for `scontrol show hostnames` (one name per line) and records anything else.
FAKE_SCONTROL = """#!/usr/bin/env bash
if [[ "$1 $2" == "show hostnames" ]]; then tr ',' '\\n' <<<"$3"
else echo "$*" >>"$SCONTROL_LOG"; fi
"""


# The script's settings (deploy/README.md); a test run must not inherit them.
SETTINGS = {"OUTPUT_DIR", "CONTAINER_RUNTIME", "CONTAINER_MOUNTS", "NPROC_PER_NODE", "RDZV_PORT"}
# The default run folder: job name, job id, the time of the job's first start.
RUN_FOLDER = r"train-4242-\d{8}-\d{6}"


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=False
    )


def package_name(project: Path) -> str:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]


def k8s_quantity(shm_size: str) -> str:
    """Docker's --shm-size units are binary: 16g is 16Gi, 512m is 512Mi."""
    return shm_size[:-1] + {"g": "Gi", "m": "Mi"}[shm_size[-1]]


# --- which launchers a project gets ----------------------------------------------------------


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_deploy_folders_follow_distributed_and_cluster(render_cache, answers: dict[str, Any]):
    project = render_cache(answers)
    if answers.get("distributed", "single_node") != "multi_node":
        assert not (project / "deploy").exists()
        return
    cluster = answers.get("cluster", "both")
    deploy = (project / "deploy").rglob("*")
    files = {path.relative_to(project) for path in deploy if path.is_file()}
    expected = {Path("deploy/README.md")}
    if cluster in ("slurm", "both"):
        expected |= {SBATCH}
    if cluster in ("kubernetes", "both"):
        expected |= {TRAINJOB, PVC}
    assert files == expected
    assert (project / "tests" / "test_launchers.py").is_file()


# --- Slurm -------------------------------------------------------------------------------


@pytest.fixture
def fake_slurm(tmp_path: Path) -> dict[str, str]:
    """The environment of a batch script in a faked 2-node allocation, with scontrol faked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(FAKE_SCONTROL)
    scontrol.chmod(0o755)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLURM_", "TRAIN_")) and key not in SETTINGS
    }
    env.update(SLURM_ENV, PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    env["SCONTROL_LOG"] = str(tmp_path / "scontrol.log")
    return env


def print_launch(script: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The script run with TRAIN_LAUNCH=print: it prints its launch line and exits."""
    return subprocess.run(
        ["bash", str(script), *args],
        env={**env, "TRAIN_LAUNCH": "print"},
        capture_output=True,
        text=True,
        check=False,
    )


def launch_line(script: Path, env: dict[str, str], *args: str) -> list[str]:
    """The script's own TRAIN_LAUNCH=print output, split as the shell would."""
    result = print_launch(script, env, *args)
    assert result.returncode == 0, result.stderr
    return shlex.split(result.stdout)


def option_value(argv: list[str], name: str) -> str:
    """The value of `--name VALUE` or `--name=VALUE` in a command line."""
    for index, part in enumerate(argv):
        if part == name:
            return argv[index + 1]
        if part.startswith(f"{name}="):
            return part.split("=", 1)[1]
    raise AssertionError(f"{name} not in {argv}")


def sbatch_option(script: str, name: str) -> list[str]:
    return re.findall(rf"^#SBATCH --{name}(?:=(\S+))?\s*$", script, flags=re.MULTILINE)


def pyxis_image(image: str) -> str:
    registry, _, rest = image.partition("/")
    return f"{registry}#{rest}" if rest and ("." in registry or ":" in registry) else image


@pytest.mark.parametrize("answers", WITH_SLURM, ids=answer_id)
def test_sbatch_is_shellcheck_clean(render_cache, answers: dict[str, Any]):
    result = run(tool("shellcheck"), "--shell=bash", render_cache(answers) / SBATCH)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("answers", WITH_SLURM, ids=answer_id)
def test_sbatch_launches_torchrun_with_c10d_in_the_train_image(
    render_cache, fake_slurm: dict[str, str], answers: dict[str, Any]
):
    project = render_cache(answers)
    script = project / SBATCH
    text = script.read_text()
    image = re.search(r'^TRAIN_IMAGE="\$\{TRAIN_IMAGE:-(.+)\}"$', text, flags=re.MULTILINE)[1]

    argv = launch_line(script, fake_slurm, "--max-steps", "5")
    start = argv.index("python")
    launch, command = argv[:start], argv[start:]
    output_dir = option_value(command, "--output-dir")
    assert re.fullmatch(rf"/shared/me/project/outputs/{RUN_FOLDER}", output_dir), output_dir
    assert launch[0] == "srun" and "--ntasks-per-node=1" in launch
    assert "--cpus-per-task=96" in launch
    assert f"--container-image={pyxis_image(image)}" in launch
    assert f"--container-mounts={output_dir}:{output_dir}" in launch
    assert command == [
        "python", "-m", "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=8",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=gpu-a:29500",
        "--rdzv-id=4242",
        "-m", f"{package_name(project)}.train",
        "--device", "cuda",
        "--output-dir", output_dir,
        "--max-steps", "5",
    ]  # fmt: skip

    # The image is one value, overridable at submit time.
    override = launch_line(script, {**fake_slurm, "TRAIN_IMAGE": "/shared/images/train.sqsh"})
    assert "--container-image=/shared/images/train.sqsh" in override
    apptainer = launch_line(script, {**fake_slurm, "CONTAINER_RUNTIME": "apptainer"})
    bound = option_value(apptainer, "--output-dir")  # another second: maybe another folder
    assert apptainer[apptainer.index("apptainer") :][:5] == [
        "apptainer", "exec", "--nv", "--bind", f"{bound}:{bound}",
    ]  # fmt: skip
    assert f"docker://{image}" in apptainer


@pytest.mark.parametrize("answers", WITH_SLURM, ids=answer_id)
def test_sbatch_header_holds_the_launch_values_once(render_cache, answers: dict[str, Any]):
    project = render_cache(answers)
    text = (project / SBATCH).read_text()
    assert sbatch_option(text, "nodes") == ["2"]
    assert sbatch_option(text, "ntasks-per-node") == ["1"]
    assert sbatch_option(text, "gpus-per-node") == ["8"]
    assert sbatch_option(text, "requeue") == [""]
    [signal] = sbatch_option(text, "signal")
    assert re.fullmatch(r"B:USR1@\d+", signal)
    assert 'scontrol requeue "$SLURM_JOB_ID"' in text
    # GPUs per node are the #SBATCH line; the script reads Slurm's count, never a number.
    assert '--nproc-per-node="$NPROC_PER_NODE"' in text
    assert 'NPROC_PER_NODE="${NPROC_PER_NODE:-${SLURM_GPUS_ON_NODE:-gpu}}"' in text
    assert f'shm_wanted="{answers.get("shm_size", "16g")}"' in text
    assert text.count("TRAIN_IMAGE:-") == 1


def test_sbatch_cpu_path_sets_the_device_and_processes_per_node(
    render_cache, fake_slurm: dict[str, str]
):
    script = render_cache(WITH_SLURM[0]) / SBATCH
    cpu = {**fake_slurm, "TRAIN_DEVICE": "cpu"}
    del cpu["SLURM_GPUS_ON_NODE"]  # what a job submitted with --gpus-per-node=0 gets
    argv = launch_line(script, cpu)
    assert option_value(argv, "--device") == "cpu"
    assert option_value(argv, "--nproc-per-node") == "1"
    argv = launch_line(script, {**cpu, "NPROC_PER_NODE": "4"})
    assert option_value(argv, "--nproc-per-node") == "4"
    # On GPUs, NPROC_PER_NODE also overrides Slurm's GPU count (e.g. one process per node).
    argv = launch_line(script, {**fake_slurm, "NPROC_PER_NODE": "1"})
    assert (option_value(argv, "--device"), option_value(argv, "--nproc-per-node")) == ("cuda", "1")


# A setting the script refuses -> what its one-line error must name.
BAD_SETTINGS = {
    "device": ({"TRAIN_DEVICE": "tpu"}, "TRAIN_DEVICE must be cuda or cpu, not 'tpu'"),
    "processes": ({"NPROC_PER_NODE": "four"}, "NPROC_PER_NODE must be a number of processes"),
    "no-gpus": ({"SLURM_GPUS_ON_NODE": "0"}, "set TRAIN_DEVICE=cpu"),
    "runtime": (
        {"CONTAINER_RUNTIME": "docker"},
        "CONTAINER_RUNTIME must be pyxis, apptainer or none",
    ),
    "launch": ({"TRAIN_LAUNCH": "ssh"}, "TRAIN_LAUNCH must be srun, print or local, not 'ssh'"),
    "no-python": ({"CONTAINER_RUNTIME": "none", "PATH": ""}, "activate the project's environment"),
}
# Training arguments that are the script's settings -> the setting the error names.
SETTING_ARGUMENTS = {
    "output-dir": (["--max-steps", "9", "--output-dir", "/elsewhere"], "OUTPUT_DIR=..."),
    "output-dir=": (["--output-dir=/elsewhere"], "OUTPUT_DIR=..."),
    "device": (["--device", "cpu"], "TRAIN_DEVICE=cpu"),
}


@pytest.mark.parametrize("setting", BAD_SETTINGS)
def test_sbatch_refuses_a_bad_setting_in_one_line(
    render_cache, fake_slurm: dict[str, str], setting: str
):
    changes, message = BAD_SETTINGS[setting]
    env = {**fake_slurm, **changes}
    if "PATH" in changes:  # no python, but the tools the script itself needs
        env["PATH"] = fake_slurm["PATH"].split(os.pathsep)[0] + os.pathsep + "/no-python-here"
    script = render_cache(WITH_SLURM[0]) / SBATCH
    result = subprocess.run(
        ["/bin/bash", str(script)],
        env={**env, "TRAIN_LAUNCH": env.get("TRAIN_LAUNCH", "print")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line, line


@pytest.mark.parametrize("argument", SETTING_ARGUMENTS)
def test_sbatch_refuses_training_arguments_that_are_its_settings(
    render_cache, fake_slurm: dict[str, str], argument: str
):
    args, setting = SETTING_ARGUMENTS[argument]
    result = print_launch(render_cache(WITH_SLURM[0]) / SBATCH, fake_slurm, *args)
    assert result.returncode == 2 and result.stdout == "", result
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and setting in line, line


def test_sbatch_default_output_folder_is_unique_and_found_again_by_a_requeue(
    render_cache, fake_slurm: dict[str, str], tmp_path: Path
):
    """Job ids repeat after the controller loses its state: the default folder also names the
    job's first start, and a requeued job (SLURM_RESTART_COUNT > 0) takes its newest one."""
    script = render_cache(WITH_SLURM[0]) / SBATCH
    env = {**fake_slurm, "SLURM_SUBMIT_DIR": str(tmp_path)}
    outputs = tmp_path / "outputs"

    def output_dir(**changes: str) -> str:
        return option_value(launch_line(script, {**env, **changes}), "--output-dir")

    first = output_dir()
    assert re.fullmatch(rf"{outputs}/{RUN_FOLDER}", first), first
    # An old job 4242's folder (before a controller reset) and this job's first run's.
    (outputs / "train-4242-20200101-000000").mkdir(parents=True)
    (outputs / "train-4242-20240101-120000").mkdir()
    (outputs / "train-42420-20300101-000000").mkdir()  # another job id that starts alike
    assert output_dir() not in {str(path) for path in outputs.iterdir()}
    assert output_dir(SLURM_RESTART_COUNT="1") == f"{outputs}/train-4242-20240101-120000"
    assert output_dir(SLURM_RESTART_COUNT="0") != f"{outputs}/train-4242-20240101-120000"
    # The job name goes in as a safe folder name; OUTPUT_DIR wins over all of it.
    named = output_dir(SLURM_JOB_NAME="my run/2")
    assert re.fullmatch(rf"{outputs}/my_run_2-4242-\d{{8}}-\d{{6}}", named), named
    assert output_dir(OUTPUT_DIR="relative/run", SLURM_RESTART_COUNT="3") == str(
        Path.cwd() / "relative" / "run"
    )


def test_sbatch_survives_a_1024_name_node_list(render_cache, fake_slurm: dict[str, str]):
    """With pipefail, `scontrol show hostnames ... | head -n 1` ended the script silently
    (SIGPIPE, status 141) once the names passed a pipe's buffer: most times in 20 for 1024."""
    script = render_cache(WITH_SLURM[0]) / SBATCH
    names = [f"gpu-{number:04d}" for number in range(1024)]
    env = {**fake_slurm, "SLURM_JOB_NODELIST": ",".join(names), "SLURM_JOB_NUM_NODES": "1024"}
    for _ in range(20):
        argv = launch_line(script, env)
        assert option_value(argv, "--rdzv-endpoint") == "gpu-0000:29500"
        assert option_value(argv, "--nnodes") == "1024"


def test_shellcheck_rejects_a_broken_sbatch(render_cache, tmp_path: Path):
    text = (render_cache(WITH_SLURM[0]) / SBATCH).read_text()
    broken = tmp_path / "train.sbatch"
    broken.write_text(text.replace('mkdir -p "$OUTPUT_DIR"', "mkdir -p $OUTPUT_DIR"))
    assert broken.read_text() != text
    assert run(tool("shellcheck"), "--shell=bash", broken).returncode != 0


# --- Kubernetes ---------------------------------------------------------------------------


def strict(schema: Any) -> Any:
    """The schema with `additionalProperties: false` on every object schema that lists its
    properties and neither allows others nor preserves unknown fields: what a cluster's
    strict field validation enforces, which the CRD's schema alone does not."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = dict(schema)
    if isinstance(schema.get("properties"), dict):
        result["properties"] = {name: strict(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            result["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            result[key] = strict(schema[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if isinstance(schema.get(key), list):
            result[key] = strict(schema[key])
    return result


def trainjob_schema_data() -> dict[str, Any]:
    """TrainJob's openAPIV3Schema, as vendored in tests/schemas (see its README)."""
    path = vendored("tests/schemas/trainjob.trainer.kubeflow.org.v1alpha1.schema.json")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def trainjob_schemas(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The TrainJob schema as published, and its strict copy (both as JSON files)."""
    folder = tmp_path_factory.mktemp("schemas")
    schema = trainjob_schema_data()
    published, strict_copy = folder / "trainjob.schema.json", folder / "trainjob.strict.schema.json"
    published.write_text(json.dumps(schema))
    strict_copy.write_text(json.dumps(strict(schema)))
    return published, strict_copy


@pytest.fixture
def strict_trainjob_schema(trainjob_schemas: tuple[Path, Path]) -> Path:
    return trainjob_schemas[1]


def check_schema(schema: Path, document: Path) -> subprocess.CompletedProcess[str]:
    return run(tool("check-jsonschema"), "--schemafile", schema, document)


def kubernetes_validate(*documents: Path) -> subprocess.CompletedProcess[str]:
    return run(tool("kubernetes-validate"), "--strict", *documents)


def runtime_pod(trainjob: dict[str, Any]) -> dict[str, Any]:
    """The pod Kubeflow Trainer's torch-distributed runtime builds for one node of this TrainJob.

    The runtime's replicated job `node` has one container, `node`; the trainer's image, command,
    args, env and resources go into it, the TrainJob's runtimePatches for that job are merged in,
    and the torch plugin adds the PET_* variables (node rank from the Job's completion index).
    """
    name = trainjob["metadata"]["name"]
    trainer = trainjob["spec"]["trainer"]
    [patch] = [
        job["template"]["spec"]["template"]["spec"]
        for entry in trainjob["spec"]["runtimePatches"]
        for job in entry["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
        if job["name"] == "node"
    ]
    spec = copy.deepcopy(patch)
    patched = {container["name"]: container for container in spec.pop("containers", [])}
    assert set(patched) <= {"node"}, "runtimePatches can only patch the runtime's containers"
    completion_index = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    pet = {
        "PET_NNODES": str(trainer["numNodes"]),
        "PET_NPROC_PER_NODE": str(trainer["numProcPerNode"]),
        "PET_MASTER_ADDR": f"{name}-node-0-0.{name}",
        "PET_MASTER_PORT": "29400",
    }
    container = {
        "name": "node",
        "image": trainer["image"],
        "command": trainer["command"],
        "args": trainer["args"],
        "env": [
            *trainer["env"],
            *({"name": key, "value": value} for key, value in pet.items()),
            {"name": "PET_NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath": completion_index}}},
        ],
        "resources": trainer["resourcesPerNode"],
        "ports": [{"containerPort": 29400}],
        **{key: value for key, value in patched.get("node", {}).items() if key != "name"},
    }
    spec["containers"] = [container]
    spec["restartPolicy"] = "Never"
    metadata = {"name": f"{name}-node-0-0"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def write_yaml(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.mark.parametrize("answers", WITH_KUBERNETES, ids=answer_id)
def test_trainjob_matches_the_strict_trainjob_schema(
    render_cache, strict_trainjob_schema: Path, answers: dict[str, Any]
):
    result = check_schema(strict_trainjob_schema, render_cache(answers) / TRAINJOB)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("answers", WITH_KUBERNETES, ids=answer_id)
def test_trainjob_pod_and_pvc_pass_kubernetes_validate(
    render_cache, tmp_path: Path, answers: dict[str, Any]
):
    project = render_cache(answers)
    trainjob = yaml.safe_load((project / TRAINJOB).read_text())
    pod = runtime_pod(trainjob)
    mounts = {mount["name"] for mount in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts == {volume["name"] for volume in pod["spec"]["volumes"]}
    result = kubernetes_validate(write_yaml(tmp_path / "pod.yaml", pod), project / PVC)
    assert result.returncode == 0, result.stdout + result.stderr
    # kubernetes-validate only warns about kinds it has no schema for: make sure it checked both.
    assert result.stdout.count(" passed ") == 2, result.stdout


@pytest.mark.parametrize("answers", WITH_KUBERNETES, ids=answer_id)
def test_trainjob_launch_values_come_from_the_answers(render_cache, answers: dict[str, Any]):
    project = render_cache(answers)
    trainjob = yaml.safe_load((project / TRAINJOB).read_text())
    pvc = yaml.safe_load((project / PVC).read_text())
    trainer = trainjob["spec"]["trainer"]
    pod_spec = runtime_pod(trainjob)["spec"]
    volumes = {volume["name"]: volume for volume in pod_spec["volumes"]}

    assert trainjob["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert trainer["numNodes"] == 2
    # One number (a YAML anchor) for processes per node and GPUs per pod.
    assert trainer["numProcPerNode"] == trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"]
    assert (project / TRAINJOB).read_text().count("*gpus-per-node") == 1
    assert trainer["command"] == ["python", "-m", "torch.distributed.run"]
    assert trainer["args"][:2] == ["-m", f"{package_name(project)}.train"]
    assert volumes["dshm"]["emptyDir"] == {
        "medium": "Memory",
        "sizeLimit": k8s_quantity(answers.get("shm_size", "16g")),
    }
    assert {"name": "dshm", "mountPath": "/dev/shm"} in pod_spec["containers"][0]["volumeMounts"]
    assert volumes["outputs"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    # torchrun reads PET_* from the runtime; setting them in the TrainJob is refused.
    assert not [env for env in trainer["env"] if env["name"].startswith("PET_")]


@pytest.mark.parametrize("answers", MULTI_NODE, ids=answer_id)
def test_both_launchers_run_one_image_named_once(render_cache, answers: dict[str, Any]):
    project = render_cache(answers)
    images = set()
    if (project / SBATCH).exists():
        text = (project / SBATCH).read_text()
        images.add(re.search(r'TRAIN_IMAGE:-([^}"]+)\}', text)[1])
    if (project / TRAINJOB).exists():
        images.add(yaml.safe_load((project / TRAINJOB).read_text())["spec"]["trainer"]["image"])
    [image] = images
    registry = {"github": "ghcr.io/", "gitlab": "registry.gitlab.com/"}
    assert image.startswith(registry.get(answers.get("ci_provider", "github"), ""))
    assert re.fullmatch(r"[a-z0-9./#_-]+:latest", image), image
    for launcher in (SBATCH, TRAINJOB):
        if (project / launcher).exists():
            assert (project / launcher).read_text().count(image) == 1, launcher


def test_strict_schema_rejects_a_misspelled_trainjob_key(
    render_cache, trainjob_schemas: tuple[Path, Path], tmp_path: Path
):
    published, strict_copy = trainjob_schemas
    trainjob = yaml.safe_load((render_cache(WITH_KUBERNETES[0]) / TRAINJOB).read_text())
    trainjob["spec"]["trainer"]["numNode"] = trainjob["spec"]["trainer"].pop("numNodes")
    broken = write_yaml(tmp_path / "trainjob.yaml", trainjob)
    assert check_schema(strict_copy, broken).returncode != 0
    # The CRD's own schema lets it through (the API server would silently drop the field):
    # strictness is what catches it.
    assert check_schema(published, broken).returncode == 0


def test_strict_schema_rejects_a_misspelled_key_in_the_pod_patch(
    render_cache, strict_trainjob_schema: Path, tmp_path: Path
):
    trainjob = yaml.safe_load((render_cache(WITH_KUBERNETES[0]) / TRAINJOB).read_text())
    [patch] = trainjob["spec"]["runtimePatches"]
    pod = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["template"]
    container = pod["spec"]["template"]["spec"]["containers"][0]
    container["volumeMount"] = container.pop("volumeMounts")
    broken = write_yaml(tmp_path / "trainjob.yaml", trainjob)
    assert check_schema(strict_trainjob_schema, broken).returncode != 0


def test_kubernetes_validate_rejects_a_broken_pod(render_cache, tmp_path: Path):
    trainjob = yaml.safe_load((render_cache(WITH_KUBERNETES[0]) / TRAINJOB).read_text())
    pod = runtime_pod(trainjob)
    dshm = next(volume for volume in pod["spec"]["volumes"] if volume["name"] == "dshm")
    dshm["emptyDir"]["medum"] = dshm["emptyDir"].pop("medium")
    result = kubernetes_validate(write_yaml(tmp_path / "pod.yaml", pod))
    assert result.returncode != 0, result.stdout
