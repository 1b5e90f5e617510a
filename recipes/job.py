"""The job: the processes (on one host or several) that train one run data-parallel, on Keras 3's
own engine, `keras.distribution` on the JAX backend.

A job is N processes (on one host or several), process 0 at the coordinator's address.
Each process is told the job by three variables, as `keras.distribution.initialize`
reads them, or by the same values as flags of `recipes train`:

    KERAS_DISTRIBUTION_JOB_ADDRESSES   host:port of process 0 (--coordinator)
    KERAS_DISTRIBUTION_NUM_PROCESSES   N (--num-processes)
    KERAS_DISTRIBUTION_PROCESS_ID      this process, 0..N-1 (--process-id)

Under SLURM (`srun`), JAX finds all three by itself. `join` starts `jax.distributed`
(CPU collectives over gloo) before anything computes; the plan then trains with a
`keras.distribution.DataParallel` over the devices of every process.

TensorFlow's `MultiWorkerMirroredStrategy` does not work with Keras 3's `fit()`
(keras-team/keras#20585), and Keras 3.15 has no `keras.distribution` on PyTorch: both
backends are refused in one line when a job has several processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re

from recipes import _log
from recipes._checks import is_int
from recipes.errors import first_line

ADDRESS_VAR = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES_VAR = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID_VAR = "KERAS_DISTRIBUTION_PROCESS_ID"
# A process that stops sending heartbeats for this long is declared lost by the coordinator,
# and every other process of the job then stops (JAX's default is 100 s).
HEARTBEAT_TIMEOUT_S = 30
# How long processes wait for each other to join.
JOIN_TIMEOUT_S = 300


class JobError(ValueError):
    """A job description that cannot be used: the message names the flag or variable."""


@dataclasses.dataclass(frozen=True)
class Job:
    """This process's place in a job; `Job()` is a job of one process.

    Attributes:
        coordinator: `host:port` of process 0; `None` in a one-process job, or when a
            cluster manager (SLURM) tells JAX.
        num_processes: processes in the job.
        process_id: this process, `0..num_processes-1`.
        cluster: `"slurm"` when the job came from SLURM's variables, else `None`.
    """

    coordinator: str | None = None
    num_processes: int = 1
    process_id: int = 0
    cluster: str | None = None

    @property
    def several(self) -> bool:
        return self.num_processes > 1

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory (process 0 alone does)."""
        return self.process_id == 0

    def describe(self) -> str:
        if not self.several:
            return "one process"
        where = f"coordinator {self.coordinator}" if self.coordinator else f"found by {self.cluster}"
        return f"process {self.process_id} of {self.num_processes} ({where})"

    def environment(self) -> dict:
        """The variables that describe this job to a process (what `recipes launch` sets)."""
        return {
            ADDRESS_VAR: self.coordinator or "",
            NUM_PROCESSES_VAR: str(self.num_processes),
            PROCESS_ID_VAR: str(self.process_id),
        }


def job_from(coordinator=None, num_processes=None, process_id=None, environ=None) -> Job:
    """The job this process belongs to: flags first, else the three variables, else SLURM's.

    Raises:
        JobError: for a value that cannot be right, or a job described in part; the
            message names the flag (and its variable) and the value received.
    """
    environ = os.environ if environ is None else environ
    given = {
        "coordinator": coordinator if coordinator is not None else environ.get(ADDRESS_VAR) or None,
        "num_processes": num_processes if num_processes is not None else environ.get(NUM_PROCESSES_VAR) or None,
        "process_id": process_id if process_id is not None else environ.get(PROCESS_ID_VAR) or None,
    }
    if all(v is None for v in given.values()):
        return _slurm_job(environ) or Job()
    n = _count("num_processes", given["num_processes"], NUM_PROCESSES_VAR, minimum=1)
    if n == 1:
        pid = 0 if given["process_id"] is None else _count("process_id", given["process_id"], PROCESS_ID_VAR)
        if pid != 0:
            raise JobError(f"--process-id must be 0 in a job of one process. Received: process_id={pid}")
        return Job(coordinator=given["coordinator"] and _address(given["coordinator"], n))
    for name, var in (("coordinator", ADDRESS_VAR), ("process_id", PROCESS_ID_VAR)):
        if given[name] is None:
            flag = "--" + name.replace("_", "-")
            raise JobError(f"A job of {n} processes needs {flag} (or {var}) on every process. Received: {name}=None")
    pid = _count("process_id", given["process_id"], PROCESS_ID_VAR)
    if pid >= n:
        raise JobError(f"--process-id must be in 0..{n - 1} for {n} processes. Received: process_id={pid}")
    return Job(coordinator=_address(given["coordinator"], n), num_processes=n, process_id=pid)


def _count(name, value, var, minimum=0) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    if not is_int(value) or value < minimum:
        flag = "--" + name.replace("_", "-")
        raise JobError(f"{flag} ({var}) must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def _address(value, n) -> str:
    """`host:port` of process 0: the first of a comma-separated list (Keras's form, one per process)."""
    addresses = [a.strip() for a in str(value).split(",")]
    if len(addresses) > 1 and len(addresses) != n:
        raise JobError(
            f"--coordinator ({ADDRESS_VAR}) lists {len(addresses)} addresses for {n} processes; give process 0's "
            f"host:port alone, or one per process. Received: coordinator={value!r}"
        )
    match = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[^\s:\[\]]+):(\d{1,5})", addresses[0])
    if not match or not 0 < int(match[2]) < 65536:
        raise JobError(
            f"--coordinator ({ADDRESS_VAR}) must be host:port of process 0, the port in 1..65535. "
            f"Received: coordinator={value!r}"
        )
    return addresses[0]


def _slurm_job(environ) -> Job | None:
    """A job from SLURM's variables under `srun` with several tasks (JAX finds the coordinator)."""
    if "SLURM_JOB_ID" not in environ or "SLURM_STEP_ID" not in environ:
        return None
    try:
        n, pid = int(environ.get("SLURM_NTASKS", "1")), int(environ.get("SLURM_PROCID", "0"))
    except ValueError:
        return None
    return Job(num_processes=n, process_id=pid, cluster="slurm") if n > 1 else None


def check_backend(job: Job, backend: str) -> None:
    """Refuses a job of several processes on a backend Keras cannot train across processes with.

    Raises:
        JobError: on TensorFlow or PyTorch with several processes.
    """
    if not job.several or backend == "jax":
        return
    why = {
        "tensorflow": "Keras 3's fit() does not work with TensorFlow's MultiWorkerMirroredStrategy "
        "(keras-team/keras#20585)",
        "torch": "Keras 3.15 has no keras.distribution on PyTorch",
    }.get(backend, f"Keras has no multi-process training on {backend}")
    raise JobError(
        f"Training across {job.num_processes} processes runs on JAX's keras.distribution: use --backend jax ({why}). "
        f"Received: backend={backend!r}"
    )


_joined: Job | None = None


def join(job: Job) -> None:
    """Joins this process to `job` (`jax.distributed.initialize`) before JAX computes anything.

    CPU collectives go over gloo. Processes wait up to `JOIN_TIMEOUT_S` for each other; a
    process that stops sending heartbeats for `HEARTBEAT_TIMEOUT_S` stops the job. Joining
    the same job again does nothing.

    Raises:
        JobError: on another backend than JAX, when already in another job, or when the
            job cannot be joined (the coordinator is unreachable, a process is missing).
    """
    global _joined
    _log.speak_from(job.process_id)  # the others' messages would repeat process 0's
    if not job.several:
        return
    import keras

    check_backend(job, keras.backend.backend())
    if _joined is not None:
        if _joined != job:
            raise JobError(f"This process already joined {_joined.describe()}. Received: {job.describe()}")
        return
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    args = (
        {}
        if job.cluster
        else dict(coordinator_address=job.coordinator, num_processes=job.num_processes, process_id=job.process_id)
    )
    try:
        jax.distributed.initialize(
            **args, initialization_timeout=JOIN_TIMEOUT_S, heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S
        )
    except Exception as e:  # XlaRuntimeError, RuntimeError: the reason is in the first line
        raise JobError(f"Could not join the job as {job.describe()}: {first_line(e)}") from None
    _joined = job


@contextlib.contextmanager
def no_distribution():
    """Builds and runs models on this process's devices alone while the job's distribution is set."""
    import keras

    saved = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(saved)


def joined() -> Job:
    """The job this process joined, or `Job()`."""
    return _joined or Job()


def lost_processes(timeout: float = HEARTBEAT_TIMEOUT_S + 15) -> list[int] | None:
    """The processes of the job the coordinator no longer counts as alive, asked after an
    exchange failed: it knows within `HEARTBEAT_TIMEOUT_S` of their last heartbeat. `None`
    when it cannot tell in `timeout` seconds; `[0]` when the coordinator itself is gone."""
    import threading

    from jax._src import distributed as jax_distributed

    job, client = joined(), jax_distributed.global_state.client
    if not job.several or client is None:
        return None
    answer = {}

    def ask():
        try:
            answer["live"] = client.get_live_nodes(list(range(job.num_processes)))
        except Exception as e:  # the coordinator (process 0) cannot be reached
            answer["error"] = e

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    asking.join(timeout)
    if "live" in answer:
        return sorted(set(range(job.num_processes)) - set(answer["live"]))
    return [0] if "error" in answer and job.process_id != 0 else None


def share(value, *, size: int = 65536):
    """Process 0's `value` (anything JSON can hold) on every process; one broadcast.

    Every process calls it at the same point; the others' `value` is ignored."""
    job = joined()
    if not job.several:
        return value
    import json

    import numpy as np
    from jax.experimental import multihost_utils

    buffer = np.zeros(size, dtype=np.uint8)
    if job.writes:
        text = json.dumps(value).encode()
        if len(text) > size:
            raise ValueError(f"{len(text)} bytes do not fit in one broadcast of {size}")
        buffer[: len(text)] = np.frombuffer(text, dtype=np.uint8)
    shared = np.asarray(multihost_utils.broadcast_one_to_all(buffer, is_source=job.writes))
    return json.loads(bytes(shared[shared != 0]).decode())
