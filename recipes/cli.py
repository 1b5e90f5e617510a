"""The `recipes` command: train any recipe on any dataset, monitored in TensorBoard.

    recipes list                                   # recipes, one line each
    recipes info                                   # devices, strategy and precision train would use
    recipes train vgg16                            # bundled digits; TensorBoard logs in runs/
    recipes train alexnet --dataset cifar10 --epochs 30 --batch-size 128 --run-dir runs/alex1
    recipes train lstm --dataset imdb --config scripts/configs/lstm_imdb.yaml --set learning_rate=3e-4
    recipes train --resume runs/alex1              # continue a killed run
    recipes evaluate runs/alex1                    # test metrics of a finished run
    recipes sample runs/gan1 --n 64 --out grid.png # generative runs
    tensorboard --logdir runs                      # watch it live

Errors in what the user gave are one line on stderr and exit status 2; set
RECIPES_DEBUG=1 for the full traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from recipes import _optional
from recipes._checks import BACKENDS
from recipes.errors import ConfigError, JobLostError, TrainingError, first_line

# TensorFlow's C++ log lines (notices about absent CUDA drivers, op-version skew) are
# noise for the command's users; set TF_CPP_MIN_LOG_LEVEL yourself to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_tensorflow_quietly():
    """Imports TensorFlow with its C++ start-up notices held back.

    TensorFlow's native libraries print absl notices ("Could not find cuda drivers",
    "All log messages before absl::InitializeLog()") straight to file descriptor 2
    while they load, before TF_CPP_MIN_LOG_LEVEL is read, so every command would open
    with them. They are shown only if the import fails.
    """
    import tempfile

    from recipes._optional import has_tensorflow

    if not has_tensorflow():  # a JAX or PyTorch install: nothing to quiet
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other error of the command."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class _TrainParser(_Parser):
    """The train parser: its help ends with each recipe's defaults, read from the registry
    only when help is asked for (the registry imports Keras)."""

    def format_help(self):
        if self.epilog is None:
            _import_tensorflow_quietly()
            self.epilog = _train_epilog()
        return super().format_help()


def _train_epilog() -> str:
    from recipes.config import DEFAULTS
    from recipes.registry import get_spec, list_models

    lines = ["per-recipe defaults (over the defaults above; --config, flags and --set override them):"]
    for spec in map(get_spec, list_models()):
        defaults = spec.defaults
        shown = ", ".join(f"{k}={v}" for k, v in defaults.items() if k != "model_args")
        shown += "".join(f", {k}={v}" for k, v in defaults.get("model_args", {}).items())
        lines.append(f"  {spec.name:<8} {shown}")
        lines += [f"           {key}: {reason}" for key, reason in spec.reasons.items()]
        for form, values in spec.data_defaults.items():
            shown = ", ".join(f"{k}={v}" for k, v in values.items() if k != "model_args")
            shown += "".join(f", {k}={v}" for k, v in values.get("model_args", {}).items())
            lines.append(f"           on {form}: {shown.lstrip(', ')}")
            lines += [f"             {key}: {reason}" for key, reason in spec.data_reasons.get(form, {}).items()]
    lines.append(
        f"  (every other setting: epochs={DEFAULTS['epochs']}, batch_size={DEFAULTS['batch_size']}, "
        f"validation_split={DEFAULTS['validation_split']}, seed={DEFAULTS['seed']})"
    )
    return "\n".join(lines)


def _batch_size(text: str):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or auto. Received: {text!r}") from None


def _train_args(p):
    from recipes.config import DEFAULTS

    p.add_argument("model", nargs="?", help="recipe name: one of those below (see `recipes list`)")
    p.add_argument(
        "--dataset",
        help="name (digits, mnist, fashion_mnist, cifar10, cifar100, imdb) "
        "or a path (.npz, image folder, .csv). Default: digits",
    )
    p.add_argument("--config", help="YAML file of settings (see scripts/configs/)")
    p.add_argument("--epochs", type=int, help="Default: per recipe (below)")
    p.add_argument(
        "--batch-size",
        type=_batch_size,
        dest="batch_size",
        help="examples per step, or auto (from the training examples: about 20 steps an epoch, 32 to 128). "
        "Default: per recipe (below)",
    )
    p.add_argument(
        "--learning-rate", type=float, dest="learning_rate", help="Default: the recipe's own (its builder's docstring)"
    )
    p.add_argument(
        "--validation-split",
        type=float,
        dest="validation_split",
        help=f"fraction of the training data held out. Default: {DEFAULTS['validation_split']}",
    )
    p.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        dest="image_size",
        help="resize images. Default: the data's size, enlarged to what the recipe needs",
    )
    p.add_argument(
        "--cache-budget",
        dest="cache_budget",
        metavar="SIZE",
        help="memory for decoded images (e.g. 512MiB, 4GiB; 0: none): a data set that fits is decoded once "
        f"and kept; a larger one streams from its files (config key cache_budget). Default: {DEFAULTS['cache_budget']}",
    )
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="keep the decoded images that do not fit --cache-budget in DIR, for later epochs and runs "
        "(config key cache). Default: none: decoded every epoch",
    )
    p.add_argument(
        "--early-stopping",
        type=int,
        metavar="PATIENCE",
        dest="early_stopping",
        help="stop after PATIENCE epochs without improvement. Default: off",
    )
    p.add_argument("--seed", type=int, help="makes a CPU run repeat exactly. Default: 0")
    p.add_argument("--strategy", help="auto, default, mirrored or onedevice. Default: auto")
    p.add_argument("--precision", help="auto, float32, mixed_float16 or mixed_bfloat16. Default: auto")
    p.add_argument("--jit", choices=("auto", "on", "off"), help="XLA compilation. Default: auto")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any training or builder setting, e.g. --set dropout=0.3 (repeatable)",
    )
    p.add_argument(
        "--judge",
        metavar="RUN_DIR",
        help="dcgan, vae: a finished classifier run whose model scores the samples (judge_confidence, "
        "class_entropy, frechet_distance; see the README). Default: a small convnet trained on the same data",
    )
    p.add_argument("--run-dir", dest="run_dir", help="Default: runs/<model>-<dataset>-<timestamp>")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the unfinished run in RUN_DIR; --epochs, --learning-rate, --early-stopping, --cache-budget "
        "and --cache may change",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _backend_arg(p, "a resumed run keeps its own")
    _job_args(p)


def _job_args(parser):
    job = parser.add_argument_group(
        "a job of several processes or hosts (--backend jax; or set KERAS_DISTRIBUTION_JOB_ADDRESSES, "
        "KERAS_DISTRIBUTION_NUM_PROCESSES, KERAS_DISTRIBUTION_PROCESS_ID)"
    )
    job.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0")
    job.add_argument("--num-processes", type=int, dest="num_processes", metavar="N", help="processes in the job")
    job.add_argument("--process-id", type=int, dest="process_id", metavar="I", help="this process, 0..N-1")


def _backend_arg(parser, default_note):
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help=f"Keras backend. Default: $KERAS_BACKEND, else Keras's configured one ({default_note})",
    )


def _select_backend(args) -> None:
    """Sets KERAS_BACKEND before anything imports Keras: `--backend`, else the run's own backend
    (a resumed, evaluated or sampled run), else whatever $KERAS_BACKEND already says."""
    wanted = getattr(args, "backend", None)
    run_dir = getattr(args, "resume", None) or (
        args.run_dir if args.command in ("evaluate", "sample", "predict") else None
    )
    if args.command == "export":
        wanted = "tensorflow"  # every export format goes through TensorFlow (recipes/trained/export.py)
        if not _optional.has_tensorflow():
            raise ConfigError(_optional.EXPORT_NEEDS_TENSORFLOW)
    if wanted is None and run_dir:
        try:
            from recipes.run_directory import read_config

            wanted = read_config(run_dir).get("backend")
        except Exception:  # not a run, or unreadable: the command says so itself
            wanted = None
    if (wanted or os.environ.get("KERAS_BACKEND")) == "jax":
        # JAX takes 75% of each GPU's memory at start unless told not to: grow as needed, as
        # TensorFlow's memory growth does (set before JAX starts; an explicit value is kept)
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        # the same seed repeats a run on GPUs too (XLA reads its flags when JAX starts)
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()
    if (wanted or os.environ.get("KERAS_BACKEND")) == "torch":
        # PyTorch's OpenMP threads spin while they wait: on shared cores that made training
        # 4-18x slower (scripts/bench/backends.py); read when torch starts, an explicit value is kept
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        # deterministic cuBLAS (torch.use_deterministic_algorithms needs it before CUDA starts)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if wanted is not None and not _optional.installed(wanted):
        source = "--backend" if getattr(args, "backend", None) else "the run's backend"
        raise ConfigError(str(_optional.backend_missing(wanted, source)))
    if wanted is None:
        try:  # $KERAS_BACKEND or keras.json, else the first installed backend
            _optional.choose_backend()
        except _optional.MissingDependency as e:
            raise ConfigError(str(e)) from None
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != wanted:
            raise ConfigError(
                f"Keras already runs on {keras.backend.backend()} in this process. Received: backend={wanted!r}"
            )
        return
    os.environ["KERAS_BACKEND"] = wanted


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="recipes", description="Train classic Keras model recipes.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="recipes with a one-line description each")
    info = sub.add_parser("info", help="devices, strategy and precision that train would use")
    info.add_argument("model", nargs="?", help="the recipe to plan for (precision can differ per recipe)")
    info.add_argument("--strategy", default="auto")
    info.add_argument("--precision", default="auto")
    _backend_arg(info, "the plan differs per backend")
    _job_args(info)
    train = sub.add_parser(
        "train", help="train a recipe; one run directory per run", formatter_class=argparse.RawDescriptionHelpFormatter
    )
    train.__class__ = _TrainParser  # add_parser takes no parser class of its own
    _train_args(train)
    ev = sub.add_parser("evaluate", help="test metrics of a finished run")
    ev.add_argument("run_dir")
    _backend_arg(ev, "the run's own")
    sp = sub.add_parser("sample", help="a grid of generated images from a dcgan or vae run")
    sp.add_argument("run_dir")
    sp.add_argument("--n", type=int, default=64)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", help="PNG path (its folder must exist). Default: RUN_DIR/plots/samples.png")
    _backend_arg(sp, "the run's own")
    _predict_export_args(sub)
    _pack_args(sub)
    launch = sub.add_parser(
        "launch",
        help="run a command as a job of N local processes (try multi-process training on one machine)",
        description="Starts N copies of a recipes command on this machine, each told the job (coordinator "
        "127.0.0.1:PORT, N, its index) and given its share of the CPU cores. If one fails, the others are "
        "stopped. Example: recipes launch --num-processes 2 -- train mlp --backend jax --run-dir runs/dp",
    )
    launch.add_argument("--num-processes", type=int, required=True, dest="num_processes", metavar="N")
    launch.add_argument("--port", type=int, help="the coordinator's port on 127.0.0.1. Default: a free one")
    launch.add_argument("job_command", nargs=argparse.REMAINDER, help="-- and the recipes command to run")
    return parser


def _pack_args(sub):
    pk = sub.add_parser(
        "pack",
        help="pack a folder of images into TFRecord shards, once, for training from them",
        description="Decodes every image once, resizes it and stores it JPEG-encoded in shards "
        "(--dataset OUT then trains from them, each process of a job reading its own). A killed pack "
        "continues when the same command runs again; a finished one is never overwritten.",
    )
    pk.add_argument("folder", nargs="?", help="a folder of class sub-folders of images (or of train/ and test/)")
    pk.add_argument("--out", required=True, help="the folder of shards to write (new, or a partial pack to continue)")
    pk.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), dest="image_size", help="the packed size")
    pk.add_argument("--channels", type=int, choices=(1, 3), help="Default: the first image's (gray or RGB)")
    pk.add_argument("--images-per-shard", type=int, dest="images_per_shard", help="Default: 2048 (~100 MB at 224x224)")
    pk.add_argument("--quality", type=int, default=95, help="JPEG quality of the packed images. Default: 95")
    pk.add_argument("--seed", type=int, default=0, help="seed of the mix of classes in each shard. Default: 0")
    pk.add_argument("--verify", action="store_true", help="only check a finished pack's counts and checksums")


def _predict_export_args(sub):
    pr = sub.add_parser(
        "predict", help="class probabilities of images, .npz or .csv rows, or texts, by a classifier run"
    )
    pr.add_argument("run_dir")
    pr.add_argument(
        "inputs",
        nargs="+",
        help="image files (.png .jpg .bmp .gif), folders of images, .npz, .csv; for a run trained on texts: "
        ".csv/.tsv/.jsonl files (a text a record), .txt files, folders of .txt files, or texts in quotes",
    )
    pr.add_argument("--top-k", type=int, default=1, dest="top_k", help="classes shown per input. Default: 1")
    pr.add_argument("--out", help="write a .csv or .json file instead of the table")
    pr.add_argument("--batch-size", type=int, default=256, dest="batch_size", help="Default: 256")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    _backend_arg(pr, "the run's own")
    ex = sub.add_parser("export", help="the run's model as a SavedModel, ONNX, LiteRT or OpenVINO file, verified")
    ex.add_argument("run_dir")
    ex.add_argument("--format", required=True, help="tf_saved_model, onnx, litert or openvino")
    ex.add_argument(
        "--out",
        required=True,
        help="SavedModel folder, .onnx, .tflite or .xml path (must be new); a text run's token-id model gets its "
        "vocabulary beside it (m.onnx: m.vocabulary.txt; a SavedModel folder: vocabulary.txt inside)",
    )
    ex.add_argument(
        "--include-preprocessing",
        action="store_true",
        dest="include_preprocessing",
        help="the export takes raw uint8 images of any size and resizes and scales them itself; a text run's "
        "SavedModel takes raw strings and vectorises them as training did (tf_saved_model only)",
    )
    ex.add_argument("--tolerance", type=float, help="largest difference from Keras allowed. Default: 1e-4")


def _select_job(args) -> None:
    """Checks --coordinator/--num-processes/--process-id and hands them on as the variables
    Keras reads, so every part of the command (and Python code it runs) sees one job."""
    if not hasattr(args, "num_processes") or args.command == "launch":
        return
    from recipes import job as job_lib

    flags = (args.coordinator, args.num_processes, args.process_id)
    try:
        job = job_lib.job_from(*flags)
    except job_lib.JobError as e:
        raise ConfigError(str(e)) from None
    if any(f is not None for f in flags):
        os.environ.update(job.environment())


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    import warnings

    def one_line(message, category, filename, lineno, line=None):
        return f"recipes {args.command}: warning: {first_line(message)}\n"

    warnings.formatwarning = one_line
    try:
        _select_backend(args)
        _select_job(args)
    except ConfigError as e:
        print(f"recipes {args.command}: error: {e}", file=sys.stderr)
        return 2
    _import_tensorflow_quietly()
    from recipes.commands import COMMANDS  # Keras: once the backend is chosen

    try:
        COMMANDS[args.command](args)
    except (ConfigError, TrainingError, _optional.MissingDependency) as e:  # the last: needs TensorFlow
        if os.environ.get("RECIPES_DEBUG"):
            raise
        line = f"recipes {args.command}: error: {first_line(e)}\n"
        if isinstance(e, JobLostError):  # leaving the job would wait for the lost process
            sys.stdout.flush()
            sys.stderr.flush()
            # JAX's coordination client learns of the loss at the same moment and logs fatal
            # lines of its own from another thread: from here on they go nowhere, so the one
            # line is the last
            stderr = os.dup(sys.stderr.fileno())
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
            os.write(stderr, line.encode())
            os._exit(1)
        sys.stderr.write(line)
        return 2 if not isinstance(e, TrainingError) else 1
    except KeyboardInterrupt:
        print(f"recipes {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
