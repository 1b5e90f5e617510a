"""Training runs: the data matched to the model, one directory per run, train / evaluate / sample.

A run directory holds everything about one run:

    config.yaml     the resolved configuration (reproduces the run)
    logs/           TensorBoard event files (`tensorboard --logdir runs`)
    backup/         the resume point while the run is unfinished (removed at the end)
    best.keras      the best model so far, last.keras the latest
    judge.keras     generative runs: the classifier that scores the samples (recipes.judge)
    history.csv     one row per epoch
    metrics.json    the test metrics, written when the run finishes
    preprocessing.json  what `recipes predict`/`export` do to raw inputs (size, channels, scaling)
    plots/          training curves, and a confusion matrix or sample grids
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import re

import numpy as np

from recipes import config as config_lib
from recipes import distributed, preprocessing, rundir
from recipes.config import ConfigError
from recipes.registry import get_spec
from recipes.rundir import (  # noqa: F401
    RUNS_ROOT,
    check_config_file,
    completed_epochs,
    default_run_dir,
    find_unfinished,
    read_config,
    read_resumes,
    remove_stale_temporaries,
    run_state,
)
from recipes.rundir import comparable as _comparable
from recipes.runs import (  # noqa: F401  (evaluate, sample and open_run are re-exported)
    evaluate,
    evaluate_model,
    held_out,
    load_model_file,
    model_path,
    open_run,
    sample,
    write_json,
)


class TrainingError(RuntimeError):
    """Training started but could not finish (for example the loss became NaN)."""


class JobLostError(TrainingError):
    """Another process of a job went away. This process cannot leave its job cleanly (JAX's
    shutdown waits for every process), so the command ends it at once after saying so."""


@contextlib.contextmanager
def user_errors():
    """Turns the loaders' and builders' `ValueError`/`TypeError`/`OSError` into `ConfigError`.

    Used around the steps that only fail on what the user gave, so the command can
    answer in one line; errors raised while training keep their traceback.
    """
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, TypeError, OSError) as e:
        raise ConfigError(str(e).strip().splitlines()[0] if str(e).strip() else repr(e)) from None


# ---------------------------------------------------------------------------- data


def open_data(config: dict, labels=None):
    """Opens the run's data source once (`datasets.open_source`) and checks the model can take it.

    `labels` overrides whether labels are read (a generative run's judge needs them)."""
    from recipes.datasets import open_source

    source = open_source(
        config["dataset"],
        labels=get_spec(config["model"]).uses_labels if labels is None else labels,
        vocab_size=config["vocab_size"],
        sequence_length=config["sequence_length"],
    )
    check_compatible(config["model"], source)
    return source


def load_data(config: dict, splits=None, source=None, labels=None, process_share=None):
    """Loads the run's dataset once, in the form its model needs: a `DatasetSplits`
    `(train, val, test, info)`. The source is opened first; its kind and example shape
    decide the resizing and the sequence form, then the pipelines are built.

    Args:
        splits: the pipelines to build (see `load_dataset`); `None` builds all.
        source: the source `open_data` returned, if the caller opened it already.
        labels: yield `(x, y)` batches; `None` does as the model needs.
        process_share: `(num_processes, process_id)`: the training pipeline yields this
            process's share of every global batch (see `load_dataset`).
    """
    from recipes.datasets import load_dataset  # TensorFlow is imported lazily

    spec = get_spec(config["model"])
    source = source or open_data(config)
    image_size = tuple(config["image_size"]) if config["image_size"] else None
    as_sequence = False
    if source.kind == "image":
        side = spec.image_side or 1
        if image_size is None and min(source.shape[:2]) < side:
            image_size = (side, side)
        as_sequence = spec.images_as_rows
    return load_dataset(
        source,
        batch_size=config["batch_size"],
        validation_split=config["validation_split"],
        seed=config["seed"],
        return_test="auto",
        labels=spec.uses_labels if labels is None else labels,
        value_range=spec.value_range,
        image_size=image_size,
        as_sequence=as_sequence,
        splits=splits,
        cache_budget=config["cache_budget"],
        disk_cache=config["cache"],
        process_share=process_share,
    )


def check_compatible(model: str, data) -> None:
    """Raises `ConfigError` before anything trains if `model` cannot take this data.

    `data` is a `datasets.Source` or a `DatasetInfo` (both have name, kind, vocab_size
    and a shape)."""
    from recipes.registry import DATA_FORMS

    spec = get_spec(model)
    form = "tokens" if data.vocab_size else data.kind
    shape = tuple(getattr(data, "input_shape", None) or data.shape)
    if form not in spec.data:
        takes = " or ".join(
            DATA_FORMS[f] + (" (read row by row)" if f == "image" and spec.images_as_rows else "") for f in spec.data
        )
        raise ConfigError(
            f"Model {model!r} trains on {takes}, but dataset {data.name!r} holds {DATA_FORMS[form]} of shape {shape}."
        )


# --------------------------------------------------------------------------- model


def builder_kwargs(config: dict, info) -> dict:
    """The keyword arguments `build_model` passes to the recipe's builder for this data."""
    spec = get_spec(config["model"])
    kwargs = {**config["model_args"], "input_shape": tuple(info.input_shape)}
    if "tokens" in spec.data:  # token ids get an Embedding; real-valued sequences none
        kwargs["vocab_size"] = info.vocab_size
    if spec.uses_labels:
        kwargs["num_classes"] = info.num_classes
    for key in ("learning_rate", "optimizer"):
        if config[key] is not None:
            if key not in config_lib.builder_params(config["model"]):
                raise ConfigError(f"Model {config['model']!r} does not take {key}. Received: {key}={config[key]!r}")
            kwargs[key] = config[key]
    return kwargs


def build_model(config: dict, info, plan):
    """Builds and compiles the recipe for this data, inside the plan's distribution scope."""
    from recipes.models._common import build_optimizer

    kwargs = builder_kwargs(config, info)
    with plan.strategy.scope():
        model = get_spec(config["model"]).builder(**kwargs)
        build_optimizer(model)
    model.jit_compile = plan.jit_compile
    model.steps_per_execution = plan.steps_per_execution
    return model


# ---------------------------------------------------------------------- run dirs

# Settings `--resume` may change: they do not change what the model or its data are.
RESUME_SETTINGS = ("epochs", "learning_rate", "early_stopping", "cache_budget", "cache")


def _claim_state(run_dir, config, overrides, log):
    """Inside the lock: decide between a new run and a resume; write config.yaml.

    Returns the settings this resume changes (empty for a new run)."""
    remove_stale_temporaries(run_dir)
    state = run_state(run_dir)
    if state == "finished":
        raise ConfigError(f"Run directory {str(run_dir)!r} holds a finished run; choose another --run-dir.")
    config_file = run_dir / "config.yaml"
    if (
        state == "unfinished"
        and config_file.stat().st_size == 0
        and not (run_dir / "backup").exists()
        and not (run_dir / "last.keras").exists()
    ):
        state = "new"  # config.yaml left empty by an old crash before anything trained: start afresh
    if state == "unfinished":
        check_config_file(run_dir)
        stored = read_config(run_dir)
        if stored.get("backend") is None:  # written before the backend was recorded
            stored["backend"] = config["backend"]
        elif stored["backend"] != config["backend"]:
            raise other_backend(run_dir, stored["backend"], config["backend"])
        if stored != _comparable({**config, **{k: stored.get(k) for k in overrides}}):
            raise ConfigError(
                f"Run directory {str(run_dir)!r} holds an unfinished run with another "
                f"configuration; resume it with `recipes train --resume {run_dir}`."
            )
        changed = {k: v for k, v in overrides.items() if stored.get(k) != v}
        done = completed_epochs(run_dir)
        if "epochs" in changed and config["epochs"] < done:
            raise ConfigError(
                f"Run {str(run_dir)!r} has completed {done} epochs already; --epochs must be at "
                f"least that. Received: epochs={config['epochs']}"
            )
        if changed:
            config_lib.dump(config, config_file, resumes=read_resumes(run_dir) + [{"epoch": done, **changed}])
            log(f"Resuming {run_dir} at epoch {done + 1} with " + ", ".join(f"{k}={v}" for k, v in changed.items()))
        else:
            log(f"Resuming {run_dir}")
        return changed
    config_lib.dump(config, config_file)
    log(f"Run directory: {run_dir}")
    return {}


# -------------------------------------------------------------------------- train


def other_backend(run_dir, trained_on: str, received: str) -> ConfigError:
    """The one-line refusal to resume a run on another backend than the one it trained on."""
    return ConfigError(
        f"Run {str(run_dir)!r} trained on {trained_on}; a run resumes on its own backend (its checkpoints "
        f"and random streams are that backend's): `recipes train --resume {run_dir}` uses it. "
        f"Received: backend={received!r}"
    )


def check_backend(config: dict) -> str:
    """The Keras backend this process runs, which a config with `backend` set must match.

    Keras picks its backend once, when it is first imported, so a config cannot switch it.

    Raises:
        ConfigError: when `config["backend"]` names another backend.
    """
    import keras

    running, wanted = keras.backend.backend(), config.get("backend")
    if wanted is not None and wanted != running:
        raise ConfigError(
            f"backend={wanted!r} needs Keras on {wanted}, but this process runs {running}: use "
            f"`recipes train --backend {wanted}`, or set KERAS_BACKEND={wanted} before Python imports keras."
        )
    return running


def prepare(config: dict, *, log=print):
    """Seeds, plans the hardware, loads the data and builds the model, as `train` does.

    Returns `(plan, (train, val, test, info), model)`: the model is compiled with the
    plan's automatic settings and ready for `model.fit(train, validation_data=val)`.
    """
    return _prepare(config, log=log)[:3]


def _prepare(config: dict, *, log=print):
    """`prepare`, and the opened data source and the configuration with its batch size
    resolved (`batch_size="auto"` becomes the one the data gave) as a fourth and fifth value.

    Raises:
        ConfigError: for invalid settings or data the model cannot take.
    """
    import keras

    from recipes import hardware

    check_backend(config)
    with user_errors():  # a job joins before JAX computes anything (the plan lists its devices)
        distributed.join(distributed.job_from())
    keras.utils.set_random_seed(config["seed"])
    hardware.make_deterministic()
    with user_errors():
        plan = hardware.configure(
            strategy=config["strategy"],
            precision=config["precision"],
            jit=config["jit"],
            steps_per_execution=config["steps_per_execution"],
            recipe=config["model"],
        )
        log(plan.describe())
        source = open_data(config)
        job = distributed.job_from()
        # a job's processes each read their own share of every global batch, and only that
        share = (job.num_processes, job.process_id) if _spread(plan) else None
        data = load_data(config, source=source, process_share=share)
        if config["batch_size"] == "auto":
            config = {**config, "batch_size": data.info.batch_size}
            log(f"Batch size: {data.info.batch_size} (auto: {data.info.num_train} training examples)")
        if data.info.cache:
            log(f"Data cache: {data.info.cache}")
        model = build_model(config, data.info, plan)
    return plan, data, model, source, config


def train(config: dict, run_dir=None, *, verbose: int = 1, log=print, overrides=None):
    """Trains a run to the end and returns `(run_dir, metrics)`.

    Everything that can fail on bad input (configuration, data, model, a run
    directory that is not usable) is checked before anything is written. The run
    directory is locked for this process while it trains. A run directory that
    holds an unfinished run with the same configuration is resumed from its last
    completed epoch; `overrides` (settings from `RESUME_SETTINGS`) may differ from
    the stored ones and are applied, recorded in config.yaml (`resumes`) and in the
    history's learning_rate column.

    Raises:
        ConfigError: for invalid settings, data the model cannot take, or a run
            directory that is foreign, in use or holds another run.
        TrainingError: if the loss became NaN, or a file could not be written.
    """
    overrides = dict(overrides or {})
    config = {**config, "backend": check_backend(config)}  # config.yaml records the backend used
    with user_errors():
        job = distributed.job_from()
        _check_job(job, config, run_dir)
    if not job.writes:  # process 0 alone writes the run directory and speaks
        verbose, log = 0, _quiet
    if run_dir is not None and job.writes:
        with user_errors():
            rundir.check_usable(run_dir)  # before the data loads: nothing to undo
    from recipes.run_judge import RunJudge

    asked = config["batch_size"]
    plan, data, model, source, config = _prepare(config, log=log)  # config.yaml records the batch size used
    if job.several:
        _check_split(config, asked, job.num_processes, "processes")
    if _spread(plan):
        _check_split(config, asked, plan.num_replicas, "devices of keras.distribution.DataParallel")
    with user_errors():  # a bad --judge is refused before anything is written; a job has none yet
        judge = None if _spread(plan) else RunJudge.plan(config, run_dir, log=log)
    if not job.writes:
        changed = distributed.share(None)  # once process 0 has claimed the run directory
        run_dir = pathlib.Path(run_dir)
        return run_dir, _fit(config, run_dir, model, plan, data, changed, verbose, log, judge, job)
    with contextlib.ExitStack() as held:
        with user_errors():
            if run_dir is None:
                run_dir = find_unfinished(config) or default_run_dir(config)
            run_dir = held.enter_context(rundir.claim(run_dir)).path
        try:
            changed = _claim_state(run_dir, config, overrides, log)
            # what `recipes predict` and `export` apply to raw inputs, without the data set
            preprocessing.record(
                run_dir, data.info, config["model"], raw_channels=source.shape[-1] if source.kind == "image" else None
            )
            changed = distributed.share(changed)
            metrics = _fit(config, run_dir, model, plan, data, changed, verbose, log, judge, job)
        except OSError as e:
            raise TrainingError(_os_error_line(e, run_dir)) from None
    return run_dir, metrics


def _quiet(*args, **kwargs):
    pass


def _spread(plan) -> bool:
    """Whether the plan trains with a `keras.distribution.DataParallel` over several devices (JAX:
    a job, or several devices of one process): `recipes.multiprocess` then runs `fit()`."""
    return plan.backend == "jax" and plan.num_replicas > 1


def _check_job(job, config, run_dir) -> None:
    """Refuses what a job of several processes cannot do, before any process starts training."""
    if not job.several:
        return
    distributed.check_backend(job, config["backend"])
    if run_dir is None:
        raise ConfigError(
            f"A job of {job.num_processes} processes needs --run-dir: one directory every process "
            f"reaches (on a filesystem all hosts share). Received: run_dir=None"
        )
    if config["batch_size"] != "auto":  # else once the data has given it
        _check_split(config, config["batch_size"], job.num_processes, "processes")
    if config.get("judge"):
        raise ConfigError(
            f"--judge is not available in a job of several processes yet; judge the run afterwards with "
            f"`recipes evaluate`. Received: judge={config['judge']!r}"
        )


def _check_split(config, asked, parts: int, what: str) -> None:
    """Refuses a global batch that does not split evenly into `parts`; `asked` is what the user gave."""
    if config["batch_size"] % parts:
        chose = f" (auto chose {config['batch_size']} for this data: give one that does)" if asked == "auto" else ""
        raise ConfigError(
            f"--batch-size is the global batch, split evenly among the {parts} {what}{chose}. "
            f"Received: batch_size={asked}"
        )


def _os_error_line(e: OSError, run_dir) -> str:
    where = e.filename or run_dir
    if e.errno == errno.ENOSPC:
        return (
            f"No space left on the device while writing {where}; free some space and run the same "
            f"command again to resume."
        )
    return f"Could not write {where}: {e.strerror or e}; the run can be resumed once this is fixed."


def _fit(config, run_dir, model, plan, data, changed, verbose, log, run_judge=None, job=None):
    from recipes.callbacks import BackupError, InterruptBetweenSteps
    from recipes.run_judge import quality_of

    if _spread(plan):  # a job of several processes, or several devices of this one
        return _fit_in_job(config, run_dir, model, plan, data, changed, verbose, job or distributed.Job())
    train_ds, val_ds, test_ds, info = data
    judge = run_judge.ready(run_dir, log) if run_judge else None

    def callbacks():
        images = run_judge.images.epoch_reference if judge else None
        return _run_callbacks(config, run_dir, data, changed, train_ds, judge=judge, judge_images=images)

    fit = dict(validation_data=val_ds, epochs=config["epochs"], verbose=verbose, shuffle=False)
    interrupt, reading = InterruptBetweenSteps(), _Reading(train_ds, val_ds, run_dir)
    try:
        with interrupt.installed(), reading:
            history = model.fit(train_ds, callbacks=callbacks() + [interrupt, reading.position], **fit)
    except BackupError as e:
        model, done = _model_from_last(run_dir, model, plan, train_ds, e)
        log(
            f"{e} Resuming from last.keras ({done} epochs completed) instead; the unreadable backup is kept "
            f"in {run_dir / 'backup.unreadable'}."
        )
        os.replace(run_dir / "backup", _free_name(run_dir / "backup.unreadable"))
        with interrupt.installed(), reading:
            history = model.fit(
                train_ds, callbacks=callbacks() + [interrupt, reading.position], initial_epoch=done, **fit
            )
    losses = [v for k, vs in history.history.items() if "loss" in k for v in vs]
    if any(not np.isfinite(v) for v in losses):
        raise TrainingError(_nan_message(config, run_dir, history))
    split, held = held_out(test_ds, val_ds, train_ds)
    final = model_path(run_dir, model)
    final = load_model_file(final) if isinstance(final, os.PathLike) else final
    metrics = evaluate_model(final, held, verbose=0)
    if judge:
        metrics.update(quality_of(final, judge, run_judge.images))
    metrics["split"] = split
    write_json(run_dir / "metrics.json", metrics)
    _remove_backup(run_dir)
    return metrics


def _run_callbacks(config, run_dir, data, changed, train_ds, **judge) -> list:
    """The callbacks of a run: `default_callbacks` with the run's settings, keeping the backup
    (removed once the metrics are written), and the rate a resume changes."""
    from recipes.callbacks import SetLearningRate, default_callbacks

    return default_callbacks(
        run_dir,
        validation_data=data.val,
        training_data=train_ds,
        class_names=data.info.class_names,
        epochs=config["epochs"],
        early_stopping_patience=config["early_stopping"],
        lr_schedule=config["lr_schedule"],
        keep_backup=True,
        **judge,
    ) + ([SetLearningRate(changed["learning_rate"])] if "learning_rate" in changed else [])


def _fit_in_job(config, run_dir, model, plan, data, changed, verbose, job):
    """`_fit` under a `DataParallel` over several devices, of one process or of a job of several
    (`recipes.multiprocess`): every process trains, process 0 validates on its twin of the
    model (every example once, on one device) and writes the run directory; the final
    metrics are process 0's, shared with the others."""
    from recipes import multiprocess
    from recipes.callbacks import InterruptBetweenSteps

    # Each process reads its own share of every global batch (`load_data(process_share=)`): the
    # epoch's order is the same everywhere (seed and epoch), so the shares are disjoint and
    # together the batch; the last, partial global batch of an epoch is left out.
    train_ds, val_ds, test_ds, info = data
    twin = multiprocess.Twin(lambda: build_model(config, info, plan), model) if job.writes else None
    callbacks = _run_callbacks(config, run_dir, data, changed, train_ds)
    interrupt, reading = InterruptBetweenSteps(), _Reading(train_ds, val_ds, run_dir)
    try:
        with interrupt.installed(), reading:
            history = model.fit(
                train_ds,
                epochs=config["epochs"],
                verbose=verbose,
                shuffle=False,
                callbacks=multiprocess.arrange(callbacks, twin, val_ds) + [interrupt, reading.position],
            )
    except Exception as e:  # jax's XlaRuntimeError or a ValueError from gloo: the peer is in the text
        reason = multiprocess.lost_peer(e)
        if reason is None:
            raise
        lost = distributed.lost_processes()
        which = f"process {', '.join(map(str, lost))} of the job" if lost else "another process of the job"
        raise JobLostError(
            f"Process {job.process_id} of {job.num_processes} lost {which} ({reason}); run the same "
            f"commands again on every host to resume from the last completed epoch."
        ) from None
    losses = [v for k, vs in history.history.items() if "loss" in k for v in vs]
    if any(not np.isfinite(v) for v in losses):
        raise TrainingError(_nan_message(config, run_dir, history))
    metrics = None
    if job.writes:
        split, held = held_out(test_ds, val_ds, train_ds)
        with multiprocess.no_distribution():
            final = model_path(run_dir, twin.sync("end"))
            final = load_model_file(final) if isinstance(final, os.PathLike) else final
            metrics = evaluate_model(final, held, verbose=0)
        metrics["split"] = split
        write_json(run_dir / "metrics.json", metrics)
        _remove_backup(run_dir)
    return distributed.share(metrics)


class _Reading:
    """Turns a failed read of a streamed image file during `fit()` into a `TrainingError`
    naming the file: the pipeline's own error (raised from TensorFlow's iterator, on any
    backend) names none. `position` is the callback that keeps where training was."""

    def __init__(self, train_ds, val_ds, run_dir):
        import keras

        class Position(keras.callbacks.Callback):
            epoch, step, validating = 0, 0, False

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch, self.step = epoch, 0

            def on_train_batch_begin(self, batch, logs=None):
                self.step = batch

            def on_test_begin(self, logs=None):
                self.validating = True

            def on_test_end(self, logs=None):
                self.validating = False

        self.train, self.val, self.run_dir = train_ds, val_ds, run_dir
        self.position = Position()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or not _is_data_error(error):
            return False
        where = self.position
        data = self.val if where.validating else self.train
        stream, shards = getattr(data, "files", None), getattr(data, "shards_root", None)
        if stream is None and shards is not None:  # a record that is not what its shard was packed with
            detail = re.search(r"(corrupted|truncated) record at \d+|Invalid JPEG data[\w ]*", error.message)
            raise TrainingError(
                f"A shard of {shards} cannot be read{f' ({detail[0]})' if detail else ''}; "
                f"`recipes pack --verify --out {shards}` names it: pack the images again. Training stopped in "
                f"epoch {where.epoch + 1}; the epochs before it are kept."
            ) from None
        if stream is None:
            return False
        found = stream.unreadable(where.epoch, where.step) if not where.validating else stream.unreadable(0, 0)
        if found is None:
            return False
        raise TrainingError(
            f"{found} Training stopped in epoch {where.epoch + 1}; the epochs before it are kept: resume with "
            f"`recipes train --resume {self.run_dir}`."
        ) from None


def _is_data_error(error) -> bool:
    import sys

    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(error, tf.errors.OpError)


def _free_name(path: pathlib.Path) -> pathlib.Path:
    n, candidate = 1, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _remove_backup(run_dir) -> None:
    from recipes.callbacks import RunBackup

    RunBackup(os.fspath(pathlib.Path(run_dir) / "backup")).remove()


def _model_from_last(run_dir, model, plan, train_ds, error):
    """When both resume points are unreadable: last.keras and the epochs it completed."""
    import keras

    from recipes.callbacks import optimizers

    last = pathlib.Path(run_dir) / "last.keras"
    if not last.exists():
        raise TrainingError(
            f"{error} There is no last.keras to resume from either: start a new run "
            f"(this one's files are left as they are)."
        )
    try:
        with plan.strategy.scope():
            restored = keras.models.load_model(last)
    except Exception as e:
        raise TrainingError(
            f"{error} {last} is unreadable too ({str(e).strip().splitlines()[0]}): start a "
            f"new run (this one's files are left as they are)."
        ) from None
    restored.jit_compile, restored.steps_per_execution = model.jit_compile, model.steps_per_execution
    steps = int(train_ds.cardinality())
    iterations = int(next(iter(optimizers(restored).values())).iterations.numpy()) if optimizers(restored) else 0
    return restored, (iterations // steps if steps > 0 else 0)


def _nan_message(config, run_dir, history) -> str:
    epoch = history.epoch[-1] + 1 if history.epoch else 1  # Keras's absolute index: right after a resume too
    lr = config["learning_rate"]
    lower = f" --learning-rate {lr / 10:g}" if lr else " --learning-rate <lower>"
    done = completed_epochs(run_dir)
    if (run_dir / "best.keras").exists() or done:
        kept = (
            f"The last good checkpoint is {run_dir / 'best.keras'}"
            if (run_dir / "best.keras").exists()
            else f"The resume point holds epoch {done}"
        )
        return (
            f"The loss became NaN in epoch {epoch}; training stopped. {kept}; continue from the last "
            f"good epoch with a lower learning rate: recipes train --resume {run_dir}{lower}"
        )
    return (
        f"The loss became NaN in epoch {epoch}, before any epoch completed; nothing was saved. "
        f"Try a lower learning rate: recipes train --resume {run_dir}{lower}"
    )
