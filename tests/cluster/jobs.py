"""How the cluster tests use the generated deploy/slurm/train.sbatch: as a cluster user would.

Each test gets its own copy of the rendered project, owned by the job user, and submits from
there with `sbatch` under that user's id. The environment is what a user on a CPU partition
sets before sbatch (deploy/README.md): the project's venv first on PATH (and its src/ on
PYTHONPATH) for CONTAINER_RUNTIME=none, TRAIN_DEVICE=cpu, one thread per rank; and
`--gpus-per-node=0` overrides the script's #SBATCH GPU line, which a cluster without GPUs
refuses.
"""

from __future__ import annotations

import contextlib
import json
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import network
from .slurm import Cluster, Job

SBATCH = "deploy/slurm/train.sbatch"
CPU_PARTITION = ["--gpus-per-node=0"]


@dataclass
class Jobs:
    cluster: Cluster
    user: pwd.struct_passwd
    python: Path
    project: Path
    package: str

    def workdir(self, name: str) -> Path:
        """A fresh copy of the project, owned by the job user: the folder a job is submitted
        from (its outputs/ and %x-%j.out log land here)."""
        workdir = self.cluster.jobs_dir / name
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.copytree(self.project, workdir, ignore=shutil.ignore_patterns(".git"))
        subprocess.run(
            ["chown", "-R", f"{self.user.pw_uid}:{self.user.pw_gid}", str(workdir)], check=True
        )
        return workdir

    def env(self, workdir: Path, **extra: str) -> dict[str, str]:
        return {
            "PATH": f"{self.python.parent}:/usr/bin:/bin",
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(workdir / "src"),
            "OMP_NUM_THREADS": "1",
            "CONTAINER_RUNTIME": "none",
            "TRAIN_DEVICE": "cpu",
            **extra,
        }

    def submit(
        self,
        workdir: Path,
        args: list[str],
        options: list[str] = CPU_PARTITION,
        script: str = SBATCH,
        **env: str,
    ) -> int:
        return self.cluster.sbatch(
            self.user, workdir, options, script, args, self.env(workdir, **env)
        )


def output_dirs(workdir: Path) -> list[Path]:
    """The run folders the script made under the submit folder's outputs/."""
    outputs = workdir / "outputs"
    return sorted(path for path in outputs.iterdir() if path.is_dir()) if outputs.is_dir() else []


def only_output_dir(workdir: Path) -> Path:
    [folder] = output_dirs(workdir)
    return folder


def summary(output_dir: Path) -> dict[str, Any]:
    return json.loads((output_dir / "summary.json").read_text())


def last_logged_step(output_dir: Path) -> int:
    """The newest step in metrics.jsonl (rank 0 appends one line per report)."""
    path = output_dir / "metrics.jsonl"
    steps = [0]
    if path.is_file():
        for line in path.read_text().splitlines():
            # A line still being written does not parse.
            with contextlib.suppress(ValueError, AttributeError):
                steps.append(int(json.loads(line).get("step", 0)))
    return max(steps)


def script_lines(job: Job) -> list[str]:
    """The lines the batch script itself wrote to the job's log (they start with a time)."""
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ")
    return [line for line in Cluster.job_log(job).splitlines() if stamp.match(line)]


@dataclass(frozen=True)
class TrainingProcess:
    """A process of a running job, as seen from the root namespace."""

    pid: int
    node: str  # the node whose network namespace it is in
    hostname: str  # its UTS namespace's hostname
    uid: int
    command: str


def training_processes(cluster: Cluster, package: str) -> list[TrainingProcess]:
    """torchrun agents and training workers (Python processes that run `-m <package>.train`,
    not srun's command line that names them) in the nodes' namespaces right now."""
    found = []
    for node in cluster.nodes:
        for pid in network.namespace_pids(node):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
                uid = Path(f"/proc/{pid}").stat().st_uid
            except OSError:
                continue  # ended meanwhile
            command = " ".join(argv)
            if not Path(argv[0]).name.startswith("python") or f"-m {package}.train" not in command:
                continue
            hostname = subprocess.run(
                ["nsenter", f"--target={pid}", "--uts", "hostname"],
                capture_output=True, text=True, check=False,
            ).stdout.strip()  # fmt: skip
            found.append(TrainingProcess(pid, node.name, hostname, uid, command))
    return found


def is_agent(process: TrainingProcess) -> bool:
    return "torch.distributed.run" in process.command
