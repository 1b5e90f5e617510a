"""One run, prepared once: `prepare(config)` checks the settings, joins the job, seeds, plans the
hardware, loads the data, builds the model and plans the judge, into one `Run` that the fit
paths, the callbacks and the end of the run take."""

from __future__ import annotations

import dataclasses
import pathlib

from recipes import hardware, run_directory
from recipes import job as job_lib
from recipes._log import logger
from recipes.errors import ConfigError, user_errors
from recipes.judge import RunJudge
from recipes.recipe import build_model, load_data, open_data, run_vocabulary


@dataclasses.dataclass
class Run:
    """Everything about one run, made by `prepare`.

    Attributes:
        config: the resolved configuration (`batch_size="auto"` resolved to the data's).
        directory: the run directory; `None` until `train` claims one when none was given.
        plan: the `hardware.HardwarePlan` (devices, distribution, precision, jit).
        data: the `DatasetSplits` `(train, val, test, info)`; a data-parallel run's training
            split is this process's share of every global batch.
        source: the opened data source (`datasets.Source`).
        model: the compiled model, in the plan's scope.
        job: the `job.Job` this process is part of (one process: `Job()`).
        judge: the generative run's `RunJudge`, or `None`.
        overrides: the settings a resume was given (`config.RESUME_SETTINGS`).
        changed: those that differ from the run's stored ones (set when the directory is claimed).
        verbose: `fit()`'s verbosity (0 on a job's other processes).
    """

    config: dict
    directory: pathlib.Path | None
    plan: object
    data: object
    source: object
    model: object
    job: job_lib.Job
    judge: RunJudge | None = None
    overrides: dict = dataclasses.field(default_factory=dict)
    changed: dict = dataclasses.field(default_factory=dict)
    verbose: int = 1


def backend_for(config: dict) -> str:
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


def prepare(config: dict, run_dir=None, *, overrides=None, verbose: int = 1) -> Run:
    """Checks, seeds, plans the hardware, loads the data, builds the model and plans the judge.

    Nothing is written: a run directory given is only checked (`train` claims it). The model
    is compiled with the plan's automatic settings and ready for
    `run.model.fit(run.data.train, validation_data=run.data.val)`.

    Raises:
        ConfigError: for invalid settings, data the model cannot take, or a run directory
            that is not usable.
    """
    import keras

    config = {**config, "backend": backend_for(config)}  # config.yaml records the backend used
    with user_errors():
        job = job_lib.job_from()
        _check_job(job, config, run_dir)
        if run_dir is not None and job.writes:
            run_directory.check_usable(run_dir)  # before the data loads: nothing to undo
        job_lib.join(job)  # before JAX computes anything (the plan lists its devices); process 0 speaks
    keras.utils.set_random_seed(config["seed"])
    hardware.make_deterministic()
    asked = config["batch_size"]
    with user_errors():
        plan = hardware.configure(
            strategy=config["strategy"],
            precision=config["precision"],
            jit=config["jit"],
            steps_per_execution=config["steps_per_execution"],
            recipe=config["model"],
        )
        logger.info(plan.describe())
        source = open_data(config)
        # a job's processes each read their own share of every global batch, and only that
        share = (job.num_processes, job.process_id) if plan.data_parallel else None
        vocabulary = run_vocabulary(run_dir) if source.kind == "text" and run_dir is not None else None
        data = load_data(config, source=source, process_share=share, vocabulary=vocabulary)
        if data.info.kind == "text":
            config = _text_settings(config, data.info)
        if config["batch_size"] == "auto":
            config = {**config, "batch_size": data.info.batch_size}
            logger.info(f"Batch size: {data.info.batch_size} (auto: {data.info.num_train} training examples)")
        logger.info(f"Data engine: {data.info.engine} ({data.info.engine_reason})")
        if data.info.cache:
            logger.info(f"Data cache: {data.info.cache}")
        model = build_model(config, data.info, plan)
    run = Run(
        config,
        pathlib.Path(run_dir) if run_dir is not None else None,
        plan,
        data,
        source,
        model,
        job,
        overrides=dict(overrides or {}),
        verbose=verbose if job.writes else 0,
    )
    if job.several:
        _check_split(config, asked, job.num_processes, "processes")
    if plan.data_parallel:
        _check_split(config, asked, plan.num_replicas, "devices of keras.distribution.DataParallel")
    with user_errors():  # a bad --judge is refused before anything is written; a job has none yet
        run.judge = None if plan.data_parallel else RunJudge.plan(config, run_dir)
    return run


def _text_settings(config, info) -> dict:
    """The settings a text data set was read with, learned or found, said and kept in config.yaml (so
    the run's resume and every later reading of its texts reads them the same way)."""
    from recipes.datasets._text import column_setting

    vocabulary = info.vocabulary
    found = {
        "vocab_size": info.vocab_size,
        "sequence_length": info.sequence_length,
        "text_column": column_setting(info.text_from),
        "label_column": column_setting(info.label_from),
    }
    classes = ", ".join(info.class_names[:8]) + (", ..." if len(info.class_names) > 8 else "")
    logger.info(
        f"Texts: {info.text_from} of {info.name}, labels from {info.label_from} "
        f"({info.num_classes} classes: {classes})" + (f"; not read: {', '.join(info.unused)}" if info.unused else "")
    )
    logger.info(
        "Text standardisation (Keras TextVectorization): lower case, ASCII punctuation stripped, split on whitespace"
    )
    logger.info(vocabulary.note[:1].upper() + vocabulary.note[1:] if vocabulary.note else "Vocabulary: the run's own")
    return {**config, **found}


def _check_job(job, config, run_dir) -> None:
    """Refuses what a job of several processes cannot do, before any process starts training."""
    if not job.several:
        return
    job_lib.check_backend(job, config["backend"])
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
