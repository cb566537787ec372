"""A real two-node Slurm on this machine: Debian's slurm-wlm 22.05 with munge.

    munged       root namespace; a key made for this run (1 KiB from os.urandom, mode 0400)
    slurmctld    root namespace, on the bridge's address (network.py)
    slurmd       one per node, each in the node's network namespace plus a UTS namespace (the
                 node's hostname) and a mount namespace (an /etc/hosts naming every node, and
                 an /etc/resolv.conf without a reachable name server)

The namespaces are entered with `nsenter --net` and `unshare --uts --mount`, not `ip netns
exec`: that one also remounts /sys, after which slurmd finds no cgroup file system and refuses
to start. Jobs see the machine's file system, so the folders under ROOT are the "shared"
storage of the cluster. No plugin needs cgroups (proctrack/linuxproc, task/none) and there is
no accounting database.

Everything lives under ROOT, and `clean` removes all of it: the recorded daemons (by pid),
every process left in the nodes' namespaces, the namespaces, the bridge and ROOT itself. `up`
calls it first, so a run that was killed is cleaned up by the next one; a lock file keeps
two test runs on one machine from sharing the cluster.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from . import daemons, network

ROOT = Path("/run/copier-pytorch-cuda-cluster")
LOCK = Path("/run/copier-pytorch-cuda-cluster.lock")
NUM_NODES = 2
CPUS_PER_NODE = 2
# Not Slurm's default ports, so that a real Slurm on this machine keeps its own.
CONTROLLER_PORT = 16817
NODE_PORT = 16818
START_TIMEOUT_S = 60.0
LOCK_TIMEOUT_S = 900.0
# Seconds after a requeue before a test lets the job start again (see Cluster.start_now).
REVOKED_SECOND_MARGIN_S = 2.0

Job = dict[str, str]  # `scontrol show job -o`, as key -> value
# Job states that do not change any more (a requeue goes through REQUEUED to PENDING).
FINAL_STATES = {
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
    "DEADLINE",
}  # fmt: skip


def slurm_conf(root: Path, controller_host: str, nodes: list[network.Node]) -> str:
    """The cluster's slurm.conf: root runs the daemons, state and logs live under `root`."""
    node_lines = "\n".join(
        f"NodeName={node.name} NodeAddr={node.address} CPUs={CPUS_PER_NODE} RealMemory=2000 "
        "State=UNKNOWN"
        for node in nodes
    )
    names = ",".join(node.name for node in nodes)
    return f"""\
ClusterName=cpcs
SlurmctldHost={controller_host}({network.CONTROLLER_ADDRESS})
SlurmctldPort={CONTROLLER_PORT}
SlurmdPort={NODE_PORT}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# The nodes share this machine's cores; take the node lines as they are.
SlurmdParameters=config_overrides
# Seconds between SIGTERM and SIGKILL when a job is cancelled or requeued (Slurm's default).
KillWait=30
# Finished jobs stay visible to scontrol for this long.
MinJobAge=600
{node_lines}
PartitionName=cpu Nodes={names} Default=YES MaxTime=INFINITE State=UP
"""


def hosts_file(controller_host: str, nodes: list[network.Node]) -> str:
    lines = ["127.0.0.1 localhost", f"{network.CONTROLLER_ADDRESS} {controller_host}"]
    lines += [f"{node.address} {node.name}" for node in nodes]
    return "\n".join(lines) + "\n"


def parse_job(line: str) -> Job:
    """One line of `scontrol show job -o`: Key=Value pairs separated by spaces."""
    return dict(re.findall(r"(\S+?)=(\S*)", line))


class ClusterError(RuntimeError):
    """The cluster did not come up, or a job did not get where a test waited for it."""


class Cluster:
    """The daemons and network of the test cluster, and the client commands to use it."""

    def __init__(self, root: Path = ROOT, num_nodes: int = NUM_NODES) -> None:
        self.root = root
        self.nodes = network.nodes(num_nodes)
        self.conf = root / "etc" / "slurm.conf"
        self.hosts = root / "etc" / "hosts"
        # No name server in the nodes: names are /etc/hosts', and a lookup of anything else
        # fails at once on the node's own loopback instead of waiting for a server it cannot
        # reach (the nodes have no route off the bridge).
        self.resolv_conf = root / "etc" / "resolv.conf"
        self.munge_socket = root / "munge" / "munge.socket"
        self.pid_dir = root / "pids"
        self.log_dir = root / "log"
        self.jobs_dir = root / "jobs"
        self.controller_host = socket.gethostname().split(".")[0]
        self.processes: dict[str, subprocess.Popen] = {}

    # --- life cycle ---------------------------------------------------------------------

    def up(self) -> None:
        """Clean up whatever an earlier run left, then start the whole cluster."""
        self.clean()
        for folder in ("etc", "munge", "pids", "log", "state", "run", "jobs"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            (self.root / "spool" / node.name).mkdir(parents=True, exist_ok=True)
        # munged refuses folders that others may write to; jobs read the socket and the conf.
        for folder in (self.root, self.root / "etc", self.root / "munge", self.jobs_dir):
            folder.chmod(0o755)
        self.write_munge_key()
        self.conf.write_text(slurm_conf(self.root, self.controller_host, self.nodes))
        self.hosts.write_text(hosts_file(self.controller_host, self.nodes))
        self.resolv_conf.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        network.create(self.nodes)
        self.start_munged()
        self.start_controller()
        for node in self.nodes:
            self.start_node(node)
        self.wait_until_idle()

    def clean(self) -> list[str]:
        """Stop and remove everything of this cluster that exists; returns what it stopped."""
        stopped = daemons.stop_recorded(self.pid_dir, str(self.root))
        # slurmstepd and the jobs' processes are no daemons of ours, but they live in the
        # nodes' namespaces, which this cluster made: all of them go.
        leftover = [pid for node in self.nodes for pid in network.namespace_pids(node)]
        daemons.stop_pids(leftover, timeout_s=2.0)
        stopped += [f"pid {pid} in a node namespace" for pid in leftover]
        for process in self.processes.values():
            process.poll()  # reap our own children
        self.processes.clear()
        network.remove(self.nodes)
        shutil.rmtree(self.root, ignore_errors=True)
        return stopped

    def write_munge_key(self) -> None:
        """A fresh key for this run only, readable by its owner (root, who runs munged)."""
        key = self.root / "munge" / "munge.key"
        descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(descriptor, "wb") as output:
            output.write(os.urandom(1024))

    def start(self, name: str, argv: list[str]) -> None:
        self.processes[name] = daemons.start(
            name, argv, self.pid_dir, self.log_dir / f"{name}.out", env=self.client_env()
        )

    def start_munged(self) -> None:
        munge = self.root / "munge"
        self.start("munged", [
            "munged", "--foreground", f"--socket={self.munge_socket}",
            f"--key-file={munge}/munge.key", f"--pid-file={munge}/munged.pid",
            f"--seed-file={munge}/munged.seed", f"--log-file={self.log_dir}/munged.log",
        ])  # fmt: skip
        self.wait_for(lambda: self.munge_socket.exists(), "munged's socket", "munged")

    def start_controller(self) -> None:
        self.start("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        self.wait_for(
            lambda: "UP" in self.run("scontrol", "ping", check=False).stdout,
            "slurmctld to answer scontrol ping",
            "slurmctld",
        )

    def start_node(self, node: network.Node) -> None:
        """slurmd in the node's network namespace, with the node's hostname and /etc/hosts."""
        inner = (
            f"hostname {node.name} && mount --bind {self.hosts} /etc/hosts && "
            f"mount --bind {self.resolv_conf} /etc/resolv.conf && "
            f"exec slurmd -D -f {self.conf} -N {node.name}"
        )
        self.start(f"slurmd-{node.name}", [
            "nsenter", f"--net={node.netns_path}",
            "unshare", "--uts", "--mount", "--propagation", "private",
            "sh", "-c", inner,
        ])  # fmt: skip

    def wait_until_idle(self) -> None:
        names = {node.name for node in self.nodes}

        def idle() -> bool:
            states = self.run("sinfo", "-h", "-N", "-o", "%N %T", check=False).stdout.split("\n")
            return {line.split()[0] for line in states if line.endswith(" idle")} >= names

        self.wait_for(idle, "every node idle in sinfo", *[f"slurmd-{name}" for name in names])

    def reset_controller(self) -> None:
        """What losing the controller's state does: slurmctld restarted on an empty state
        folder, so that job ids start again at 1."""
        process = self.processes.pop("slurmctld")
        daemons.stop_pids([process.pid])
        process.poll()
        shutil.rmtree(self.root / "state")
        (self.root / "state").mkdir()
        self.start_controller()
        self.wait_until_idle()

    # --- waiting ------------------------------------------------------------------------

    def wait_for(
        self, ready: Callable[[], bool], what: str, *logs: str, timeout_s: float = START_TIMEOUT_S
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ClusterError(f"{name} exited ({process.returncode}):\n{self.logs(name)}")
            if time.monotonic() > deadline:
                raise ClusterError(f"no {what} after {timeout_s:.0f} s:\n{self.logs(*logs)}")
            time.sleep(0.2)

    def logs(self, *names: str) -> str:
        """The end of the named daemons' logs (all of them without names), for messages."""
        paths = sorted(self.log_dir.glob("*"))
        if names:
            paths = [path for path in paths if path.name.split(".")[0] in names]
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-3000:]}" for path in paths
        )

    # --- clients ------------------------------------------------------------------------

    def client_env(self) -> dict[str, str]:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A Slurm command as root (scontrol, sinfo, scancel...)."""
        result = subprocess.run(
            command, capture_output=True, text=True, env=self.client_env(), check=False,
            timeout=60,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise ClusterError(f"{' '.join(command)} failed: {result.stderr.strip()}")
        return result

    def job(self, job_id: int) -> Job:
        return parse_job(self.run("scontrol", "show", "job", "-o", str(job_id)).stdout)

    def wait_job(
        self, job_id: int, ready: Callable[[Job], bool], what: str, timeout_s: float = 240.0
    ) -> Job:
        """Poll the job until `ready(job)`; fail with its state and log otherwise."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if ready(job):
                return job
            if job["JobState"] in FINAL_STATES:
                raise ClusterError(
                    f"job {job_id} ended ({job['JobState']}, exit {job.get('ExitCode')}) "
                    f"instead of being {what}:\n{self.job_log(job)[-6000:]}"
                )
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"job {job_id} is not {what} after {timeout_s:.0f} s: "
                    f"JobState={job.get('JobState')} Reason={job.get('Reason')}\n"
                    f"{self.job_log(job)[-6000:]}"
                )
            time.sleep(0.3)

    def wait_finished(self, job_id: int, timeout_s: float = 240.0) -> Job:
        """Until the job has ended for good (not requeued)."""
        return self.wait_job(
            job_id, lambda job: job["JobState"] in FINAL_STATES, "finished", timeout_s
        )

    def wait_requeued(self, job_id: int) -> Job:
        """Until the job is back in the queue, waiting for its BeginTime: a requeued job may
        start again only after AuthInfo's cred_expire (120 s by default)."""
        return self.wait_job(
            job_id,
            lambda job: job["JobState"] == "PENDING" and job["Reason"] == "BeginTime",
            "pending on its BeginTime after a requeue",
        )

    def start_now(self, job: Job) -> None:
        """Let a requeued job start without waiting for its BeginTime; but not within the
        second of the requeue (its SubmitTime): the nodes refuse credentials issued in the
        second in which they revoked the job's old ones ("Job credential revoked", and the
        job fails), which the BeginTime delay otherwise rules out."""
        requeued_at = datetime.fromisoformat(job["SubmitTime"]).timestamp()
        time.sleep(max(0.0, requeued_at + REVOKED_SECOND_MARGIN_S - time.time()))
        self.run("scontrol", "update", f"JobId={job['JobId']}", "StartTime=now")

    @staticmethod
    def job_log(job: Job) -> str:
        path = Path(job.get("StdOut", ""))
        return path.read_text(errors="replace") if path.is_file() else f"(no log at {path})"

    def sbatch(
        self, user: Any, workdir: Path, options: list[str], script: str, args: list[str],
        env: dict[str, str],
    ) -> int:  # fmt: skip
        """Submit as `user` (a pwd entry) from `workdir`; returns the job id."""
        result = subprocess.run(
            ["sbatch", "--parsable", *options, script, *args],
            cwd=workdir,
            env={**env, "SLURM_CONF": str(self.conf)},
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(f"sbatch {' '.join(options)} {script} failed: {result.stderr}")
        return int(result.stdout.strip().split(";")[0])


class Lock:
    """An exclusive lock on LOCK for the whole test run: one cluster per machine.

    The holder writes its pytest-xdist run id into the file. Another worker of the same run
    waiting for it would wait until that worker's session ends (the suite's end): that means
    the tests of the "cluster" xdist group were split across workers, which is refused at once.
    """

    def __init__(self, path: Path = LOCK, timeout_s: float = LOCK_TIMEOUT_S) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")
        self.file: Any = None

    def acquire(self) -> None:
        self.file = open(self.path, "a+")  # noqa: SIM115  (held until release)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                self.file.seek(0)
                holder = self.file.read().strip()
                if self.run_id and holder == self.run_id:
                    self.file.close()
                    raise ClusterError(
                        "another xdist worker of this run holds the cluster: the cluster tests "
                        "must share one worker (--dist loadgroup with a pytest-xdist that "
                        "honours xdist_group, or without -n)"
                    ) from None
                if time.monotonic() > deadline:
                    self.file.close()
                    raise ClusterError(
                        f"another test run holds {self.path} (its cluster is in use) for more "
                        f"than {self.timeout_s:.0f} s"
                    ) from None
                time.sleep(1)
        self.file.seek(0)
        self.file.truncate()
        self.file.write(self.run_id)
        self.file.flush()

    def release(self) -> None:
        self.file.truncate(0)
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()
