"""Cluster level: the generated deploy/slurm/train.sbatch on a real two-node Slurm.

A multi_node + slurm project is submitted with sbatch by an unprivileged user, from a copy of
the project, on the CPU path deploy/README.md documents (CONTAINER_RUNTIME=none,
TRAIN_DEVICE=cpu, --gpus-per-node=0). What is checked:

- a job trains across both nodes: world_size 2, a training process in each node's network
  namespace with that node's hostname, run as the job user;
- stopped mid-run by each way Slurm stops a job (SIGUSR1 to the batch shell, as the time
  limit's `--signal=B:USR1` does, mid-run and while the training is still starting; SIGUSR1
  to the job steps only, as `scancel --signal=USR1` without --batch does; `scontrol requeue`,
  which sends SIGTERM), the job saves, is requeued once, and ends at the step, loss and
  evaluation of the uninterrupted job;
- a SIGUSR1 that reaches the batch shell after the training finished does not requeue it;
- a node list of 1024 names (scontrol prints 9 KiB of them) does not end the script;
- processes per node are settable on a CPU partition, where the script's own GPU line is
  refused;
- after the controller lost its state and gives out job ids again, the new job with an old
  id trains afresh instead of resuming the old job's checkpoints.

The cluster comes up once per run (conftest.py); each job takes both nodes, so the tests run
one after another on one xdist worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .jobs import (
    Jobs,
    TrainingProcess,
    is_agent,
    last_logged_step,
    only_output_dir,
    output_dirs,
    script_lines,
    summary,
    training_processes,
)
from .slurm import FINAL_STATES, Cluster, ClusterError, Job

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]

MAX_STEPS = 200
# The project's tiny CPU configuration: a checkpoint every 10 steps, a report every 5.
TRAINING = [
    *("--config", "configs/tiny.yaml"),
    *("--max-steps", str(MAX_STEPS), "--eval-interval", "100"),
]
SHORT = ["--config", "configs/tiny.yaml", "--max-steps", "20"]
# Stop a job once its training has logged this step: past the rendezvous, far from the end.
STOP_AFTER_STEP = 20


@dataclass
class Run:
    job: Job
    output_dir: Path
    summary: dict[str, Any]
    processes: set[TrainingProcess]


def finished(job: Job) -> bool:
    return job["JobState"] in FINAL_STATES


def training_past(workdir: Path, step: int) -> bool:
    folders = output_dirs(workdir)
    return len(folders) == 1 and last_logged_step(folders[0]) >= step


def end_state(job: Job) -> tuple[str, str, str]:
    """How a job ended, and how often it was restarted (requeued)."""
    return job["JobState"], job["ExitCode"], job["Restarts"]


def log_of(job: Job) -> str:
    """The end of the job's log, for failure messages."""
    return Cluster.job_log(job)[-6000:]


def assert_line(job: Job, text: str) -> str:
    """The batch script's own log line that contains `text`."""
    lines = script_lines(job)
    matches = [line for line in lines if text in line]
    assert matches, f"no line with {text!r} from the script in:\n" + "\n".join(lines)
    return matches[-1]


@pytest.fixture(scope="module")
def uninterrupted(slurm_jobs: Jobs) -> Run:
    """TRAINING as one job that nothing stops, watching which processes run where."""
    cluster = slurm_jobs.cluster
    workdir = slurm_jobs.workdir("uninterrupted")
    job_id = slurm_jobs.submit(workdir, TRAINING)
    seen: set[TrainingProcess] = set()
    deadline = time.monotonic() + 240
    while not finished(job := cluster.job(job_id)) and time.monotonic() < deadline:
        seen |= {
            TrainingProcess(0, p.node, p.hostname, p.uid, "agent" if is_agent(p) else "worker")
            for p in training_processes(cluster, slurm_jobs.package)
        }
        time.sleep(0.2)
    job = cluster.wait_finished(job_id)
    output_dir = only_output_dir(workdir)
    return Run(job, output_dir, summary(output_dir), seen)


def test_a_job_trains_across_both_nodes(slurm_jobs: Jobs, uninterrupted: Run):
    job = uninterrupted.job
    assert end_state(job) == ("COMPLETED", "0:0", "0"), log_of(job)
    assert job["NodeList"] == "node[1-2]" and job["BatchHost"] == "node1"
    done = uninterrupted.summary
    assert (done["status"], done["step"], done["world_size"]) == ("completed", MAX_STEPS, 2)
    assert done["resumed_from"] is None
    # One torchrun and one training process in each node's namespace, with that node's
    # hostname, as the job user: rank 1 reached the rendezvous on node1 across the bridge.
    uid = slurm_jobs.user.pw_uid
    expected = {
        TrainingProcess(0, node, node, uid, kind)
        for node in ("node1", "node2")
        for kind in ("agent", "worker")
    }
    assert uninterrupted.processes == expected
    assert "rendezvous node1:29500" in assert_line(job, "2 nodes x 1 cpu processes")
    assert_line(job, f"completed at step {MAX_STEPS}, loss {done['loss']}")


# How Slurm stops a running job, and at which logged step -> the signal the training gets.
# The time limit's own signal goes to the batch shell, as with --batch; "at start" is a
# signal while the training is still starting (a --time within --signal's lead), which the
# script holds back until the training has reported a step.
USR1_TO_BATCH_SHELL = ["scancel", "--signal=USR1", "--batch"]
STOPS = {
    "usr1-to-batch-shell": (USR1_TO_BATCH_SHELL, STOP_AFTER_STEP, "SIGUSR1"),
    "usr1-to-batch-shell-at-start": (USR1_TO_BATCH_SHELL, 0, "SIGUSR1"),
    "usr1-to-job-steps": (["scancel", "--signal=USR1"], STOP_AFTER_STEP, "SIGUSR1"),
    "scontrol-requeue": (["scontrol", "requeue"], STOP_AFTER_STEP, "SIGTERM"),
}
REPORTED = {
    "SIGUSR1": "preempted at step {step}, checkpoint saved, requeued",
    "SIGTERM": "stopped at step {step} by SIGTERM, checkpoint saved",
}


@pytest.mark.parametrize("stop", STOPS)
def test_a_stopped_job_is_requeued_and_ends_like_an_uninterrupted_one(
    slurm_jobs: Jobs, uninterrupted: Run, stop: str
):
    command, after_step, received = STOPS[stop]
    cluster = slurm_jobs.cluster
    workdir = slurm_jobs.workdir(f"stop-{stop}")
    job_id = slurm_jobs.submit(workdir, TRAINING)
    if after_step:
        cluster.wait_job(job_id, lambda _: training_past(workdir, after_step), "training")
    else:  # once the script has said where it runs the training, before its first step
        cluster.wait_job(job_id, lambda job: bool(script_lines(job)), "starting")
        assert last_logged_step(only_output_dir(workdir)) == 0
    cluster.run(*command, str(job_id))

    requeued = cluster.wait_requeued(job_id)
    output_dir = only_output_dir(workdir)
    stopped = summary(output_dir)
    assert (stopped["status"], stopped["signal"]) == ("preempted", received), stopped
    assert max(after_step, 1) <= stopped["step"] < MAX_STEPS, stopped
    assert requeued["Restarts"] == "1"
    assert_line(requeued, f"job {job_id}: " + REPORTED[received].format(step=stopped["step"]))

    cluster.start_now(requeued)
    job = cluster.wait_finished(job_id)
    assert end_state(job) == ("COMPLETED", "0:0", "1"), log_of(job)
    # The second run found the first run's folder (no new one) and resumed from its checkpoint.
    assert output_dirs(workdir) == [output_dir]
    done = summary(output_dir)
    assert (done["status"], done["resumed_from"], done["world_size"]) == (
        "completed", stopped["step"], 2,
    ), done  # fmt: skip
    reference = uninterrupted.summary
    assert (done["step"], done["loss"], done["eval"]) == (
        reference["step"], reference["loss"], reference["eval"],
    )  # fmt: skip


def test_a_signal_after_the_last_step_does_not_requeue(slurm_jobs: Jobs):
    """The training completes; then SIGUSR1 reaches the batch shell, which is still waiting
    for srun. To hold the job there, node2's torchrun is stopped (SIGSTOP) while its training
    process runs: node1's torchrun then waits for it at torchrun's exit barrier."""
    cluster = slurm_jobs.cluster
    workdir = slurm_jobs.workdir("late-signal")
    job_id = slurm_jobs.submit(workdir, SHORT)

    def node2_training() -> TrainingProcess | None:
        processes = training_processes(cluster, slurm_jobs.package)
        agents = [p for p in processes if p.node == "node2" and is_agent(p)]
        workers = [p for p in processes if p.node == "node2" and not is_agent(p)]
        return agents[0] if agents and workers else None

    cluster.wait_job(job_id, lambda _: node2_training() is not None, "training on node2")
    agent = node2_training()
    assert agent is not None, "node2's training ended before it could be held"
    os.kill(agent.pid, signal.SIGSTOP)
    try:
        cluster.wait_job(
            job_id,
            lambda _: any(
                (folder / "summary.json").is_file() and summary(folder)["status"] == "completed"
                for folder in output_dirs(workdir)
            ),
            "done training",
        )
        assert cluster.job(job_id)["JobState"] == "RUNNING"
        cluster.run("scancel", "--signal=USR1", "--batch", str(job_id))
        cluster.wait_job(
            job_id,
            lambda job: any("SIGUSR1" in line for line in script_lines(job)),
            "reporting the signal",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(agent.pid, signal.SIGCONT)
    job = cluster.wait_finished(job_id)
    assert (job["JobState"], job["Restarts"]) == ("COMPLETED", "0"), log_of(job)
    assert_line(job, "completed at step 20, loss")
    assert_line(job, "SIGUSR1 came after the last step: not requeued")


def test_a_1024_name_node_list_keeps_the_script_running(slurm_jobs: Jobs):
    """The launch line for a 1024-node allocation, printed 20 times inside a job with the real
    scontrol: `scontrol show hostnames | head -n 1` failed 7 to 17 times in 20 (SIGPIPE)."""
    cluster = slurm_jobs.cluster
    workdir = slurm_jobs.workdir("node-list")
    (workdir / "print-launch.sh").write_text(
        "#!/bin/bash\n"
        "export SLURM_JOB_NODELIST='node[0001-1024]' SLURM_JOB_NUM_NODES=1024 TRAIN_LAUNCH=print\n"
        "for attempt in $(seq 20); do\n"
        "  bash deploy/slurm/train.sbatch >launch-$attempt.txt 2>&1\n"
        '  echo "$attempt $?"\n'
        "done >attempts.txt\n"
    )
    job_id = slurm_jobs.submit(workdir, [], options=["--nodes=1"], script="print-launch.sh")
    job = cluster.wait_finished(job_id)
    assert job["JobState"] == "COMPLETED", log_of(job)
    attempts = (workdir / "attempts.txt").read_text().split("\n")[:-1]
    assert attempts == [f"{number} 0" for number in range(1, 21)]
    for number in range(1, 21):
        launch = (workdir / f"launch-{number}.txt").read_text().split()
        assert "--nnodes=1024" in launch and "--rdzv-endpoint=node0001:29500" in launch


def test_processes_per_node_on_a_cpu_partition(slurm_jobs: Jobs):
    cluster = slurm_jobs.cluster
    workdir = slurm_jobs.workdir("processes-per-node")
    # The script's `#SBATCH --gpus-per-node=8` on a cluster without GPUs: hence the CPU
    # path's --gpus-per-node=0.
    with pytest.raises(ClusterError, match="Invalid generic resource"):
        slurm_jobs.submit(workdir, SHORT, options=[])
    job_id = slurm_jobs.submit(workdir, SHORT, NPROC_PER_NODE="2")
    job = cluster.wait_finished(job_id)
    assert job["JobState"] == "COMPLETED", log_of(job)
    done = summary(only_output_dir(workdir))
    assert (done["status"], done["world_size"]) == ("completed", 4)
    assert_line(job, "2 nodes x 2 cpu processes")


def test_a_new_job_with_a_reused_job_id_trains_afresh(slurm_jobs: Jobs):
    """Job ids start again at 1 when the controller loses its state; a new job with the id of
    an old one, submitted from the same folder, must not resume the old job's checkpoints."""
    cluster = slurm_jobs.cluster
    workdir = slurm_jobs.workdir("reused-id")
    cluster.reset_controller()
    first = slurm_jobs.submit(workdir, SHORT)
    assert cluster.wait_finished(first)["JobState"] == "COMPLETED"
    old_dir = only_output_dir(workdir)
    old_summary = summary(old_dir)

    cluster.reset_controller()
    second = slurm_jobs.submit(workdir, SHORT)
    assert second == first, "the reset controller should give out the same job id again"
    job = cluster.wait_finished(second)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), log_of(job)
    [new_dir] = [folder for folder in output_dirs(workdir) if folder != old_dir]
    fresh = summary(new_dir)
    assert (fresh["status"], fresh["resumed_from"], fresh["steps_this_run"]) == (
        "completed", None, 20,
    ), fresh  # fmt: skip
    assert summary(old_dir) == old_summary
