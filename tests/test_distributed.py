"""A job of several processes (recipes.distributed, recipes.multiprocess, recipes launch):
the job's description, the refusals, and real processes on loopback training together."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from recipes import distributed, launch
from recipes.distributed import Job, JobError, job_from

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "_job_worker.py")
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
JOB_VARS = (distributed.ADDRESS_VAR, distributed.NUM_PROCESSES_VAR, distributed.PROCESS_ID_VAR)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in JOB_VARS and not k.startswith("SLURM_")}
    return {**env, **QUIET, **extra}


# ------------------------------------------------------------------ the job's description


def test_flags_win_over_the_variables_and_no_description_is_one_process():
    env = {
        distributed.ADDRESS_VAR: "10.0.0.1:1234",
        distributed.NUM_PROCESSES_VAR: "4",
        distributed.PROCESS_ID_VAR: "3",
    }
    assert job_from(environ=env) == Job("10.0.0.1:1234", 4, 3)
    assert job_from(process_id=1, environ=env) == Job("10.0.0.1:1234", 4, 1)
    assert job_from(environ={}) == Job() and not Job().several and Job().writes
    # Keras's form: one address per process, process 0's first
    assert job_from("h0:1,h1:2", 2, 1, environ={}).coordinator == "h0:1"
    assert Job("h:1", 2, 1).describe() == "process 1 of 2 (coordinator h:1)" and not Job("h:1", 2, 1).writes


def test_slurm_tasks_are_a_job_that_jax_finds_by_itself():
    slurm = {"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "4", "SLURM_PROCID": "2"}
    assert job_from(environ=slurm) == Job(None, 4, 2, cluster="slurm")
    assert job_from(environ={**slurm, "SLURM_NTASKS": "1"}) == Job()
    assert job_from(environ={"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}) == Job()  # sbatch's shell, not srun


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            (None, 2, 0),
            "A job of 2 processes needs --coordinator (or KERAS_DISTRIBUTION_JOB_ADDRESSES) on every "
            "process. Received: coordinator=None",
        ),
        (
            ("h:1", 2, None),
            "A job of 2 processes needs --process-id (or KERAS_DISTRIBUTION_PROCESS_ID) on every "
            "process. Received: process_id=None",
        ),
        (("h:1", 2, 2), "--process-id must be in 0..1 for 2 processes. Received: process_id=2"),
        (
            ("h:1", 0, 0),
            "--num-processes (KERAS_DISTRIBUTION_NUM_PROCESSES) must be an integer >= 1. Received: num_processes=0",
        ),
        (
            ("h:1", "two", 0),
            "--num-processes (KERAS_DISTRIBUTION_NUM_PROCESSES) must be an integer >= 1. Received: num_processes='two'",
        ),
        (
            ("h", 2, 0),
            "--coordinator (KERAS_DISTRIBUTION_JOB_ADDRESSES) must be host:port of process 0, the port in "
            "1..65535. Received: coordinator='h'",
        ),
        (
            ("h:99999", 2, 0),
            "--coordinator (KERAS_DISTRIBUTION_JOB_ADDRESSES) must be host:port of process 0, the "
            "port in 1..65535. Received: coordinator='h:99999'",
        ),
        (
            ("a:1,b:2,c:3", 2, 0),
            "--coordinator (KERAS_DISTRIBUTION_JOB_ADDRESSES) lists 3 addresses for 2 processes; "
            "give process 0's host:port alone, or one per process. Received: coordinator='a:1,b:2,c:3'",
        ),
        ((None, 1, 1), "--process-id must be 0 in a job of one process. Received: process_id=1"),
    ],
)
def test_a_bad_job_description_is_refused_naming_the_flag(flags, message):
    with pytest.raises(JobError) as e:
        job_from(*flags, environ={})
    assert str(e.value) == message


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_several_processes_need_jax(backend):
    with pytest.raises(
        JobError,
        match=r"^Training across 2 processes runs on JAX's keras.distribution: use "
        rf"--backend jax \(.+\)\. Received: backend='{backend}'$",
    ):
        distributed.check_backend(Job("h:1", 2, 0), backend)
    distributed.check_backend(Job(), backend)  # one process: any backend


def test_core_shares_split_the_cores_evenly():
    assert launch.core_shares(2, cores=[0, 1, 2, 3, 4]) == [[0, 1, 2], [3, 4]]
    assert launch.core_shares(3, cores=[0, 1]) == [[0], [1], [0]]  # more processes than cores: they share
    assert sorted(c for share in launch.core_shares(2) for c in share) == sorted(os.sched_getaffinity(0))


# ------------------------------------------------------------------- refusals, one line


def recipes_cli(*args, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "recipes.cli", *map(str, args)],
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.process
def test_the_command_refuses_a_job_it_cannot_run_and_writes_nothing(tmp_path):
    run = tmp_path / "run"
    job = ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0"]
    cases = [
        (
            ["--backend", "tensorflow", "--run-dir", run],
            "Training across 2 processes runs on JAX's keras.distribution: use --backend jax",
        ),
        (["--backend", "jax"], "A job of 2 processes needs --run-dir"),
        (
            ["--backend", "jax", "--run-dir", run, "--batch-size", "33"],
            "--batch-size is the global batch, split evenly among the 2 processes. Received: batch_size=33",
        ),
        (["--backend", "jax", "--run-dir", run, "--process-id", "5"], "--process-id must be in 0..1 for 2 processes."),
    ]
    for extra, message in cases:
        done = recipes_cli("train", "mlp", *job, *extra)
        assert done.returncode == 2, done.stderr[-2000:]
        lines = done.stderr.strip().splitlines()
        assert lines[-1].startswith(f"recipes train: error: {message}"), lines[-1]
        assert not run.exists()
    done = recipes_cli("launch", "--num-processes", "2", "--", "train", "mlp", "--process-id", "1")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "recipes launch: error: launch sets the job itself; leave --process-id out of the command. "
        "Received: --process-id"
    )
    done = recipes_cli("launch", "--num-processes", "2")
    assert done.stderr.strip().endswith(
        "launch needs a recipes command after --, e.g. -- train mlp --backend jax. Received: none"
    )


# ----------------------------------------------------------- real processes on loopback


def _job(tmp_path, model, n, *, epochs=2, batch=64, split=0.1099, sets=()):
    """Trains `model` in a job of `n` processes (n=1: one plain process); returns the
    run directory and each process's final weights."""
    out = tmp_path / f"{model}-{n}"
    out.mkdir()
    run = out / "run"
    address = f"127.0.0.1:{launch.free_port()}"
    _run_workers([[]] * n, address, out, run, model, epochs, batch, split, *sets)
    weights = []
    for index in range(n):
        with np.load(out / f"weights{index}.npz") as f:
            weights.append([f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))])
    return run, weights


def _run_workers(prefixes, address, out, run, *args):
    """Runs `_job_worker.py` once per prefix (`[]`, or `["ip", "netns", "exec", host]`) as
    the processes of one job at `address` (one plain process when there is one prefix)."""
    n = len(prefixes)
    procs = []
    for index, prefix in enumerate(prefixes):
        job = Job(address, n, index).environment() if n > 1 else {}
        procs.append(
            subprocess.Popen(
                [*prefix, sys.executable, WORKER, *map(str, (out, run, *args))],
                env=_env(KERAS_BACKEND="jax", **job),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]


def _files_once(run, sessions=1):
    """Every file of the run directory is written once: one TensorBoard file per writer
    and session (a resumed run has two sessions), no stray temporaries."""
    names = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert not [n for n in names if ".tmp" in n or n.endswith("~")], names
    for split in ("train", "validation"):
        assert len(list((run / "logs" / split).glob("events.out.tfevents.*"))) == sessions, names
    return names


@pytest.mark.job
@pytest.mark.parametrize("model, sets", [("mlp", ()), ("vae", ())])
def test_two_processes_train_as_one_with_the_same_global_batch(model, sets, tmp_path):
    """Both processes end with identical weights, equal (within float32 summation order) to
    one process trained on the same global batches; process 0 alone wrote the run."""
    run, (first, second) = _job(tmp_path, model, 2, sets=sets)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    alone_run, (alone,) = _job(tmp_path, model, 1, sets=sets)
    # The same sums in another order (per-process batches of 32, then a mean of the two):
    # float32 rounding. Adam moves a weight by up to the learning rate each step whatever
    # its gradient's size, so a weight whose gradient is rounding noise may end up to two
    # steps' worth apart; every other weight agrees far closer (the mean difference).
    header, first_row = (alone_run / "history.csv").read_text().splitlines()[:2]
    rate = float(dict(zip(header.split(","), first_row.split(","), strict=True))["learning_rate"])
    differences = np.concatenate([np.abs(a - b).ravel() for a, b in zip(first, alone, strict=True)])
    assert differences.max() <= 2 * rate, differences.max()
    assert differences.mean() < 1e-5, differences.mean()

    names = _files_once(run)
    assert {"config.yaml", "history.csv", "last.keras", "metrics.json", "preprocessing.json"} <= set(names)
    rows = (run / "history.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    assert "val_loss" in rows[0]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "test" and np.isfinite(metrics["loss"])


@pytest.mark.job
def test_a_jobs_processes_each_decode_their_share_of_an_image_folder(tmp_path):
    """On a streamed folder each process decodes only the files of its share of every global
    batch: between them, each image once per epoch; and they end with the same weights."""
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for c in range(3):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(30):
            pixels = np.clip(rng.normal(60 * c + 40, 30, (10, 10, 3)), 0, 255).astype(np.uint8)
            (root / f"c{c}" / f"{i}.png").write_bytes(tf_png(pixels))
    sets = (f"dataset={root}", "cache_budget=0", "hidden_units=[16]")
    out = tmp_path / "job"
    run, (first, second) = _job(tmp_path, "mlp", 2, batch=16, split=0.2, sets=sets)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    decoded = [int((tmp_path / "mlp-2" / f"decoded{i}.txt").read_text()) for i in (0, 1)]
    steps = 72 // 16  # 72 training images (18 validation), whole global batches only
    # process 1 reads training batches alone: its share, 8 images a step for 2 epochs (and one
    # batch JAX's trainer reads to build the model), not the 2 x 72 a process reading every file would
    assert decoded[1] in (2 * steps * 8, 2 * steps * 8 + 8), decoded
    assert decoded[0] > decoded[1]  # process 0 also validates, on every validation image
    assert json.loads((run / "metrics.json").read_text())["split"] == "validation"
    assert not out.exists()


def tf_png(pixels):
    import tensorflow as tf

    return tf.io.encode_png(pixels).numpy()


@pytest.mark.job
def test_launch_stops_the_job_when_a_process_dies_and_the_rerun_resumes(tmp_path):
    run = tmp_path / "run"
    args = ["train", "mlp", "--backend", "jax", "--epochs", 4, "--batch-size", 8, "--run-dir", run, "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "recipes.cli", "launch", "--num-processes", "2", "--", *map(str, args)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    meta = run / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the job ended before a process could be killed"
    worker = subprocess.run(
        ["pgrep", "-f", "-s", str(os.getpgid(proc.pid)), "recipes.cli train"], capture_output=True, text=True
    )
    pids = sorted(int(p) for p in worker.stdout.split())
    assert len(pids) == 2, worker.stdout
    killed_at = time.monotonic()
    os.kill(pids[1], signal.SIGKILL)  # started second: process 1
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - killed_at < 60
    assert proc.returncode != 0
    assert err.strip().splitlines()[-1] == (
        "recipes launch: error: process 1 of 2 was killed by signal 9; the other processes were stopped. "
        "Run the same command again to resume from the last completed epoch."
    )
    assert not (run / "metrics.json").exists()

    again = recipes_cli("launch", "--num-processes", 2, "--", *args, env=_env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming" in again.stdout
    rows = (run / "history.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    _files_once(run, sessions=2)


# ------------------------------------------------------- two hosts: network namespaces


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair, 10.231.<k>.1 and .2: the project's own test
    hosts. Each host's name resolves to its own address there (`ip netns exec` reads
    /etc/netns/<name>/hosts), as on real hosts, since gloo announces that address."""
    import shutil

    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("network namespaces need root and the ip command (iproute2)")
    tag = f"{os.getpid() % 10000}"
    names, k = (f"rcpa{tag}", f"rcpb{tag}"), os.getpid() % 200 + 20
    addresses = (f"10.231.{k}.1", f"10.231.{k}.2")
    hostname = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()

    def ip(*args, check=True):
        return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)

    try:
        for name in names:
            ip("netns", "add", name)
        ip("link", "add", f"va{tag}", "type", "veth", "peer", "name", f"vb{tag}")
        for name, dev, address in zip(names, (f"va{tag}", f"vb{tag}"), addresses, strict=True):
            ip("link", "set", dev, "netns", name)
            ip("-n", name, "addr", "add", f"{address}/24", "dev", dev)
            ip("-n", name, "link", "set", dev, "up")
            ip("-n", name, "link", "set", "lo", "up")
            os.makedirs(f"/etc/netns/{name}", exist_ok=True)
            with open(f"/etc/netns/{name}/hosts", "w") as f:
                f.write(f"127.0.0.1 localhost\n{address} {hostname}\n")
    except (subprocess.CalledProcessError, OSError) as e:
        for name in names:
            ip("netns", "del", name, check=False)
        pytest.skip(f"this machine does not allow network namespaces: {getattr(e, 'stderr', e)}")
    yield list(zip(names, addresses, strict=True))
    for name in names:
        ip("netns", "del", name, check=False)
        shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)


@pytest.mark.job
def test_two_hosts_train_the_mlp_together(two_hosts, tmp_path):
    (host0, address0), (host1, _) = two_hosts
    run = tmp_path / "run"
    port = 29400 + os.getpid() % 500
    hosts = [["ip", "netns", "exec", host] for host in (host0, host1)]
    _run_workers(hosts, f"{address0}:{port}", tmp_path, run, "mlp", 2, 64, 0.1099)
    with np.load(tmp_path / "weights0.npz") as a, np.load(tmp_path / "weights1.npz") as b:
        assert a.files == b.files and len(a.files) > 0
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    assert [r.split(",")[0] for r in (run / "history.csv").read_text().splitlines()[1:]] == ["1", "2"]
    _files_once(run)


@pytest.mark.process
def test_several_devices_of_one_process_validate_and_test_every_example_once(tmp_path):
    """Two CPU devices in one process take the job's path: the 359 test digits end in a batch
    of 39, which a DataParallel over 2 devices cannot split (IndivisibleError); the twin
    measures them on one device, as `recipes evaluate` does."""
    run = tmp_path / "run"
    env = _env(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    args = ["train", "mlp", "--backend", "jax", "--strategy", "mirrored", "--epochs", 1, "--run-dir", run, "--quiet"]
    done = recipes_cli(*args, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "strategy: data_parallel (2 replicas)" in done.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    evaluated = recipes_cli("evaluate", run, env=_env(KERAS_BACKEND="jax"))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    again = json.loads(evaluated.stdout)
    assert again["split"] == metrics["split"] == "test"
    assert again["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-7)
    assert round(metrics["accuracy"] * 359) == pytest.approx(metrics["accuracy"] * 359, abs=1e-3)  # of all 359
    odd = recipes_cli(*args[:-3], "--batch-size", 33, "--run-dir", tmp_path / "odd", env=env)
    assert odd.returncode == 2
    assert odd.stderr.strip().splitlines()[-1] == (
        "recipes train: error: --batch-size is the global batch, split evenly among the 2 devices of "
        "keras.distribution.DataParallel. Received: batch_size=33"
    )
    assert not (tmp_path / "odd").exists()


@pytest.mark.job
def test_info_in_a_job_shows_the_processes_and_every_device():
    done = recipes_cli("launch", "--num-processes", "2", "--", "info", "mlp", "--backend", "jax")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith(
        "backend: jax | devices: CPU:0 (process 0), CPU:2048 (process 1) | strategy: data_parallel"
    )
    assert any("DataParallel over the 2 devices of 2 processes (this is process 0)" in line for line in lines)
    job = next(line for line in lines if line.startswith("job: "))
    assert job.startswith("job: process 0 of 2 (coordinator 127.0.0.1:")
    assert lines[-2:] == [
        "data engine: pydataset (data in memory on jax: PyDataset measured faster than tf.data; tf.data for image "
        "files, texts and packed shards)",
        "TensorBoard writer: tf.summary (TensorFlow is installed)",
    ]


@pytest.mark.job
def test_without_launch_a_lost_process_ends_the_other_in_one_line(tmp_path):
    """Hosts of a job run on their own: when one dies, the other's next exchange fails and it
    stops with one line (exit 1) instead of waiting forever."""
    run = tmp_path / "run"
    port = launch.free_port()
    args = ["train", "mlp", "--backend", "jax", "--epochs", 6, "--batch-size", 8, "--run-dir", run, "--quiet"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "recipes.cli", *map(str, args)],
            env=_env(**Job(f"127.0.0.1:{port}", 2, index).environment()),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    meta = run / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and procs[0].poll() is None:
        if meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 1:
            break
        time.sleep(0.05)
    assert procs[0].poll() is None and procs[1].poll() is None
    procs[1].kill()
    killed_at = time.monotonic()
    _, err = procs[0].communicate(timeout=120)
    procs[1].communicate()
    assert time.monotonic() - killed_at < distributed.HEARTBEAT_TIMEOUT_S + 30
    assert procs[0].returncode == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("recipes train: error: Process 0 of 2 lost process 1 of the job (") and last.endswith(
        "run the same commands again on every host to resume from the last completed epoch."
    ), err[-3000:]
