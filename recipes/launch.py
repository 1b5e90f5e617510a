"""`recipes launch`: a job of N local processes on loopback, to try multi-process training
on one machine (each process gets its share of the CPU cores), supervised: when one
process fails or is killed, the others are stopped and the launch says which one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from recipes import job as job_lib

# After one process fails, the others get SIGTERM, then SIGKILL after this many seconds.
STOP_GRACE_S = 10


class LaunchError(ValueError):
    """Arguments `launch` cannot run."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def core_shares(n: int, cores=None) -> list[list[int]]:
    """The CPU cores of this process split into `n` shares (as even as possible; at least one each)."""
    cores = sorted(os.sched_getaffinity(0) if cores is None else cores)
    if n >= len(cores):
        return [[cores[i % len(cores)]] for i in range(n)]
    size, extra = divmod(len(cores), n)
    shares, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        shares.append(cores[start:end])
        start = end
    return shares


def check(num_processes, command, port=None) -> list[str]:
    """The command to start (without `--`), or `LaunchError` naming the bad argument."""
    if not isinstance(num_processes, int) or num_processes < 1:
        raise LaunchError(f"--num-processes must be an integer >= 1. Received: num_processes={num_processes!r}")
    if port is not None and not 0 < port < 65536:
        raise LaunchError(f"--port must be in 1..65535. Received: port={port!r}")
    command = list(command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise LaunchError("launch needs a recipes command after --, e.g. -- train mlp --backend jax. Received: none")
    given = [flag for flag in ("--coordinator", "--num-processes", "--process-id") if flag in command]
    if given:
        raise LaunchError(f"launch sets the job itself; leave {given[0]} out of the command. Received: {given[0]}")
    return command


def launch(num_processes, command, *, port=None, stream=sys.stderr) -> int:
    """Runs `recipes <command>` as a job of `num_processes` processes on 127.0.0.1.

    Process 0's output passes through; the others' error output is prefixed with their
    index. Returns 0 when every process succeeds, else the first failure's exit status
    (1 for a process killed by a signal), after stopping the others.
    """
    try:
        command = check(num_processes, command, port)
    except LaunchError as e:
        print(f"recipes launch: error: {e}", file=stream)
        return 2
    port = port or free_port()
    shares = core_shares(num_processes)
    procs = []
    for index in range(num_processes):
        job = job_lib.Job(coordinator=f"127.0.0.1:{port}", num_processes=num_processes, process_id=index)
        threads = str(len(shares[index]))
        env = {
            **os.environ,
            **job.environment(),
            # each process computes on its own cores: XLA, tf.data and OpenMP size their pools by these
            "OMP_NUM_THREADS": threads,
            "TF_NUM_INTRAOP_THREADS": threads,
            "TF_NUM_INTEROP_THREADS": "1",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "recipes.cli", *command],
                env=env,
                stdout=None if index == 0 else subprocess.DEVNULL,
                stderr=None if index == 0 else subprocess.PIPE,
                text=True,
                preexec_fn=(lambda cores=shares[index]: os.sched_setaffinity(0, cores)),
            )
        )
        if index:
            threading.Thread(target=_relay, args=(procs[-1].stderr, index, stream), daemon=True).start()
    return _supervise(procs, stream)


def _relay(pipe, index, stream):
    for line in pipe:
        stream.write(f"[process {index}] {line}")
        stream.flush()


def _supervise(procs, stream) -> int:
    forward = lambda signum, frame: [p.send_signal(signum) for p in procs if p.poll() is None]  # noqa: E731
    previous = signal.signal(signal.SIGINT, forward)
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                index, code = failed[0]
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                _stop(procs)
                print(
                    f"recipes launch: error: process {index} of {len(procs)} {how}; the other processes were "
                    f"stopped. Run the same command again to resume from the last completed epoch.",
                    file=stream,
                )
                return code if code > 0 else 1
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.2)
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
