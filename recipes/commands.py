"""What each `recipes` command does, once `recipes.cli` has parsed it and chosen the backend."""

from __future__ import annotations

import json
import sys
import warnings

import keras

from recipes import _optional, hardware, launch, run_directory, trained
from recipes import config as config_lib
from recipes import job as job_lib
from recipes import run as run_lib
from recipes.config import DEFAULTS
from recipes.errors import ConfigError, user_errors
from recipes.preprocessing import terminal_progress
from recipes.registry import get_spec, list_models

# The settings `recipes train` takes as flags, by config key (the flag is --key with dashes);
# `--resume` accepts only those of `config.RESUME_SETTINGS`.
TRAIN_FLAGS = (
    "dataset",
    "epochs",
    "batch_size",
    "learning_rate",
    "validation_split",
    "image_size",
    "cache_budget",
    "cache",
    "early_stopping",
    "seed",
    "strategy",
    "precision",
    "jit",
    "judge",
    "backend",
)


def cmd_list(args):
    names = list_models()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {get_spec(name).description}")


def cmd_info(args):
    with user_errors():
        if args.model is not None:
            get_spec(args.model)
        job = job_lib.job_from()
        job_lib.check_backend(job, keras.backend.backend())
        job_lib.join(job)
        plan = hardware.configure(strategy=args.strategy, precision=args.precision, recipe=args.model)
    print(plan.describe())
    for reason in plan.reasons:
        print(f"  {reason}")
    print(
        f"data cache: {DEFAULTS['cache_budget']} of decoded images in memory when a data set fits (else streamed "
        f"from its files); change it with --cache-budget SIZE or the config key cache_budget, and keep what does "
        f"not fit on disk with --cache DIR (config key cache)"
    )
    print(f"job: {job.describe()}")
    print(f"backends installed: {', '.join(_optional.backends_installed())}")
    from recipes.callbacks.logs import summary_writer_choice
    from recipes.datasets import data_engine

    engine, why = data_engine()
    print(f"data engine: {engine} ({why})")
    writer, why = summary_writer_choice()
    print(f"TensorBoard writer: {writer} ({why})")


def cmd_pack(args):
    from recipes.datasets import pack, verify_pack  # TensorFlow

    with user_errors():
        if args.verify:
            manifest = verify_pack(args.out)
            counts = ", ".join(f"{k} {v['num_examples']:,}" for k, v in manifest["splits"].items())
            print(f"{args.out}: {len(manifest['shards'])} shards verified ({counts} images)")
            return
        if args.folder is None or args.image_size is None:
            raise ConfigError("pack needs the folder of images and --image-size H W (or --verify alone).")
        options = {"images_per_shard": args.images_per_shard} if args.images_per_shard else {}
        pack(
            args.folder,
            args.out,
            image_size=tuple(args.image_size),
            channels=args.channels,
            quality=args.quality,
            seed=args.seed,
            **options,
        )


def cmd_launch(args):
    sys.exit(launch.launch(args.num_processes, args.job_command, port=args.port))


def cmd_train(args):
    # the run's final error says so, with what to do: the per-checkpoint notices add nothing
    warnings.filterwarnings("ignore", message=r"Epoch \d+: a loss is NaN or inf")
    given = {key: getattr(args, key) for key in TRAIN_FLAGS}
    given["jit"] = {"on": True, "off": False}.get(args.jit, args.jit)
    overrides = {}
    if args.resume:
        if args.model or args.run_dir:
            raise ConfigError("--resume takes the run directory alone; its config.yaml holds the model and settings.")
        fixed = [
            _flag(key)
            for key in ("dataset", "config", *TRAIN_FLAGS, "set")
            if key not in (*config_lib.RESUME_SETTINGS, "backend") and getattr(args, key) not in (None, [])
        ]
        if fixed:
            changeable = [_flag(key) for key in config_lib.RESUME_SETTINGS]
            raise ConfigError(
                f"--resume continues a run as it was set up; {', '.join(dict.fromkeys(fixed))} cannot change (only "
                f"{', '.join(changeable[:-1])} and {changeable[-1]} can): start a new run instead."
            )
        config = run_directory.stored_config(args.resume)
        if args.backend and config.get("backend") and args.backend != config["backend"]:
            raise run_lib.other_backend(args.resume, config["backend"], args.backend)
        if run_directory.run_state(args.resume) != "unfinished":
            raise ConfigError(f"Run {args.resume!r} has finished; nothing to resume.")
        overrides = {k: given[k] for k in config_lib.RESUME_SETTINGS if given[k] is not None}
        config = {**config, **overrides}
        config_lib.validate(config)
        run_dir = args.resume
    else:
        if not args.model:
            raise ConfigError("train needs a model name (see `recipes list`) or --resume RUN_DIR.")
        file = config_lib.load_yaml(args.config) if args.config else None
        config = config_lib.resolve(args.model, file=file, flags=given, sets=config_lib.parse_sets(args.set))
        run_dir = args.run_dir
    verbose = 0 if args.quiet else 2 if not sys.stdout.isatty() else 1
    run_dir, metrics = run_lib.train(config, run_dir, overrides=overrides, verbose=verbose)
    print(f"Test metrics: {json.dumps(metrics)}")
    print(f"Run directory: {run_dir}  (tensorboard --logdir {run_dir.parent})")


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def cmd_evaluate(args):
    print(json.dumps(trained.evaluate(args.run_dir), indent=2))


def cmd_sample(args):
    print(trained.sample(args.run_dir, n=args.n, out=args.out, seed=args.seed))


def cmd_predict(args):
    progress = None if args.quiet else terminal_progress()
    trained.predict_command(
        args.run_dir, args.inputs, top_k=args.top_k, out=args.out, batch_size=args.batch_size, progress=progress
    )


def cmd_export(args):
    trained.export_command(
        args.run_dir, args.format, args.out, include_preprocessing=args.include_preprocessing, tolerance=args.tolerance
    )


COMMANDS = {
    "list": cmd_list,
    "info": cmd_info,
    "train": cmd_train,
    "pack": cmd_pack,
    "evaluate": cmd_evaluate,
    "sample": cmd_sample,
    "predict": cmd_predict,
    "export": cmd_export,
    "launch": cmd_launch,
}
