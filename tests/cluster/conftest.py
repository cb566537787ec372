"""Fixtures for the cluster level: one real two-node Slurm per test run (slurm.py), the job
user, the jobs' Python, and the rendered multi_node + slurm project the tests submit.

The cluster needs root (namespaces, a bridge, daemons as root) and Debian's slurm-wlm and
munge; scripts/test.sh installs them with apt when it runs as root, as CI does. Missing
pieces fail these tests with what to do, never skip them: without root, deselect them with
`-m "not cluster"`. Every cluster test module marks its tests `xdist_group("cluster")`, so
one worker brings the cluster up once and runs them in order.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .jobs import Jobs
from .python_env import SYSTEM_PYTHON, PythonEnvError, job_python
from .slurm import Cluster, ClusterError, Lock

JOB_USER = "cpc-job"
TOOLS = ("slurmctld", "slurmd", "munged", "sbatch", "scontrol", "srun", "nsenter", "unshare", "ip")
ANSWERS = {"distributed": "multi_node", "cluster": "slurm"}


def missing_requirements() -> str | None:
    """What this machine lacks for the cluster, as one sentence; None when nothing."""
    if os.geteuid() != 0:
        return "the cluster tests need root (deselect them with -m 'not cluster')"
    missing = [name for name in TOOLS if shutil.which(name, path="/usr/sbin:/usr/bin") is None]
    if not SYSTEM_PYTHON.is_file():
        missing.append(str(SYSTEM_PYTHON))
    if missing:
        return (
            f"the cluster tests need {', '.join(missing)}: run them through scripts/test.sh as "
            "root, or apt-get install slurmctld slurmd slurm-client munge iproute2 python3-venv"
        )
    return None


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The running cluster. Torn down at the end of the session, also after a failure; its
    daemons' logs are kept in the session's temporary folder (cluster-logs*)."""
    problem = missing_requirements()
    if problem:
        pytest.fail(problem, pytrace=False)
    lock = Lock()
    try:
        lock.acquire()
    except ClusterError as error:
        pytest.fail(str(error), pytrace=False)
    cluster = Cluster()
    try:
        started = time.monotonic()
        try:
            cluster.up()
        except (ClusterError, RuntimeError) as error:
            pytest.fail(f"the cluster did not come up: {error}", pytrace=False)
        print(f"cluster up in {time.monotonic() - started:.1f} s")
        yield cluster
    finally:
        if cluster.log_dir.is_dir():
            shutil.copytree(cluster.log_dir, tmp_path_factory.mktemp("cluster-logs"),
                            dirs_exist_ok=True)  # fmt: skip
        cluster.clean()
        lock.release()


@pytest.fixture(scope="session")
def job_user() -> pwd.struct_passwd:
    """An unprivileged user for the jobs, made once per machine (a system user, no home)."""
    try:
        return pwd.getpwnam(JOB_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", JOB_USER],
            check=True,
        )  # fmt: skip
        return pwd.getpwnam(JOB_USER)


@pytest.fixture(scope="session")
def slurm_jobs(slurm_cluster: Cluster, job_user: pwd.struct_passwd, render_cache) -> Jobs:
    """What the tests submit with: the cluster, the user, the venv and the project."""
    try:
        python = job_python()
    except PythonEnvError as error:
        pytest.fail(str(error), pytrace=False)
    project = render_cache(ANSWERS)
    package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
    return Jobs(slurm_cluster, job_user, python, Path(project), package)
