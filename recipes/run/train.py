"""`train(config)`: one run from its settings to its run directory, resumed where one stopped.

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

from recipes import config as config_lib
from recipes import job as job_lib
from recipes import preprocessing, run_directory
from recipes._log import forwarded_to, logger
from recipes.errors import ConfigError, TrainingError, user_errors
from recipes.run.fit import fit
from recipes.run.prepare import prepare


def train(config: dict, run_dir=None, *, verbose: int = 1, log=None, overrides=None):
    """Trains a run to the end and returns `(run_dir, metrics)`.

    Everything that can fail on bad input (configuration, data, model, a run
    directory that is not usable) is checked before anything is written. The run
    directory is locked for this process while it trains. A run directory that
    holds an unfinished run with the same configuration is resumed from its last
    completed epoch; `overrides` (settings from `config.RESUME_SETTINGS`) may differ from
    the stored ones and are applied, recorded in config.yaml (`resumes`) and in the
    history's learning_rate column.

    Args:
        log: also called with each line the run says (the `recipes` logger's messages).

    Raises:
        ConfigError: for invalid settings, data the model cannot take, or a run
            directory that is foreign, in use or holds another run.
        TrainingError: if the loss became NaN, or a file could not be written.
    """
    with forwarded_to(log):
        run = prepare(config, run_dir, overrides=overrides, verbose=verbose)
        if not run.job.writes:
            run.changed = job_lib.share(None)  # once process 0 has claimed the run directory
            return run.directory, fit(run)
        with contextlib.ExitStack() as held:
            with user_errors():
                directory = run.directory or run_directory.find_unfinished(run.config)
                directory = directory or run_directory.default_run_dir(run.config)
                run.directory = held.enter_context(run_directory.claim(directory)).path
            try:
                changed = _claim_state(run)
                # what `recipes predict` and `export` apply to raw inputs, without the data set
                raw_channels = run.source.shape[-1] if run.source.kind == "image" else None
                preprocessing.record(run.directory, run.data.info, run.config["model"], raw_channels=raw_channels)
                run.changed = job_lib.share(changed)
                metrics = fit(run)
            except OSError as e:
                raise TrainingError(_os_error_line(e, run.directory)) from None
        return run.directory, metrics


def _claim_state(run) -> dict:
    """Inside the lock: decide between a new run and a resume; write config.yaml.

    Returns the settings this resume changes (empty for a new run)."""
    run_dir, config, overrides = run.directory, run.config, run.overrides
    run_directory.remove_stale_temporaries(run_dir)
    state = run_directory.run_state(run_dir)
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
    if state != "unfinished":
        config_lib.dump(config, config_file)
        logger.info(f"Run directory: {run_dir}")
        return {}
    run_directory.check_config_file(run_dir)
    stored = run_directory.read_config(run_dir)
    if stored.get("backend") is None:  # written before the backend was recorded
        stored["backend"] = config["backend"]
    elif stored["backend"] != config["backend"]:
        raise other_backend(run_dir, stored["backend"], config["backend"])
    if stored != run_directory.comparable({**config, **{k: stored.get(k) for k in overrides}}):
        raise ConfigError(
            f"Run directory {str(run_dir)!r} holds an unfinished run with another "
            f"configuration; resume it with `recipes train --resume {run_dir}`."
        )
    changed = {k: v for k, v in overrides.items() if stored.get(k) != v}
    done = run_directory.completed_epochs(run_dir)
    if "epochs" in changed and config["epochs"] < done:
        raise ConfigError(
            f"Run {str(run_dir)!r} has completed {done} epochs already; --epochs must be at "
            f"least that. Received: epochs={config['epochs']}"
        )
    if changed:
        resumes = run_directory.read_resumes(run_dir) + [{"epoch": done, **changed}]
        config_lib.dump(config, config_file, resumes=resumes)
        logger.info(f"Resuming {run_dir} at epoch {done + 1} with " + ", ".join(f"{k}={v}" for k, v in changed.items()))
    else:
        logger.info(f"Resuming {run_dir}")
    return changed


def other_backend(run_dir, trained_on: str, received: str) -> ConfigError:
    """The one-line refusal to resume a run on another backend than the one it trained on."""
    return ConfigError(
        f"Run {str(run_dir)!r} trained on {trained_on}; a run resumes on its own backend (its checkpoints "
        f"and random streams are that backend's): `recipes train --resume {run_dir}` uses it. "
        f"Received: backend={received!r}"
    )


def _os_error_line(e: OSError, run_dir) -> str:
    where = e.filename or run_dir
    if e.errno == errno.ENOSPC:
        return (
            f"No space left on the device while writing {where}; free some space and run the same "
            f"command again to resume."
        )
    return f"Could not write {where}: {e.strerror or e}; the run can be resumed once this is fixed."
