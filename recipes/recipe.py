"""A recipe matched to its data: the run's data opened and loaded in the form its model needs, and
the model built for that data.

Everything that turns a configuration (`recipes.config`) into data (`recipes.datasets`) and a
compiled model (`recipes.registry`) is here, once: training, the judge and the trained-run
commands (evaluate, sample, predict, export) all come down to it.
"""

from __future__ import annotations

from recipes import config as config_lib
from recipes.errors import ConfigError
from recipes.registry import DATA_FORMS, get_spec


def open_data(config: dict, labels=None):
    """Opens the run's data source once (`datasets.open_source`) and checks the model can take it.

    `labels` overrides whether labels are read (a generative run's judge needs them)."""
    from recipes.datasets import open_source  # Keras

    source = open_source(
        config["dataset"],
        labels=get_spec(config["model"]).uses_labels if labels is None else labels,
        vocab_size=config["vocab_size"],
        sequence_length=config["sequence_length"],
        text_column=config["text_column"],
        label_column=config["label_column"],
    )
    check_compatible(config["model"], source)
    return source


def load_data(config: dict, splits=None, source=None, labels=None, process_share=None, vocabulary=None):
    """Loads the run's dataset once, in the form its model needs: a `DatasetSplits`
    `(train, val, test, info)`. The source is opened first; its kind and example shape
    decide the resizing and the sequence form, then the pipelines are built.

    Args:
        splits: the pipelines to build (see `load_dataset`); `None` builds all.
        source: the source `open_data` returned, if the caller opened it already.
        labels: yield `(x, y)` batches; `None` does as the model needs.
        process_share: `(num_processes, process_id)`: the training pipeline yields this
            process's share of every global batch (see `load_dataset`).
        vocabulary: texts: the run's `Vocabulary` (a finished or resumed run reads its texts
            as it trained on them); `None` learns it from the training split.
    """
    from recipes.datasets import load_dataset  # Keras

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
        vocabulary=vocabulary if source.kind == "text" else None,
    )


def held_out(test_ds, val_ds, train_ds):
    """`(split, dataset)`: the split the final metrics are measured on: test, else validation, else train."""
    for split, data in (("test", test_ds), ("validation", val_ds), ("train", train_ds)):
        if data is not None:
            return split, data


def run_vocabulary(run_dir):
    """The `Vocabulary` a run's texts were read with (from its `vocabulary.txt`), or `None` for a run of
    other data or none recorded yet."""
    from recipes import preprocessing

    try:
        pre = preprocessing.read(run_dir)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return pre.text_vocabulary() if pre is not None and pre.kind == "text" else None


def held_out_data(config: dict, vocabulary=None):
    """The held-out split of a run's data alone (see `held_out`), as a finished run is measured on:
    `(split, dataset, info, source)`; texts read with the run's `vocabulary`."""
    source = open_data(config)
    split = "test" if source.has_test else "val" if config["validation_split"] else "train"
    data = load_data(config, splits=[split], source=source, vocabulary=vocabulary)
    name, dataset = held_out(data.test, data.val, data.train)
    return name, dataset, data.info, source


def check_compatible(model: str, data) -> None:
    """Raises `ConfigError` before anything trains if `model` cannot take this data.

    `data` is a `datasets.Source` or a `DatasetInfo` (both have name, kind, vocab_size
    and a shape)."""
    spec = get_spec(model)
    form = data.kind if data.kind == "text" else "tokens" if data.vocab_size else data.kind
    shape = tuple(getattr(data, "input_shape", None) or data.shape)
    if form not in spec.data:
        takes = " or ".join(
            DATA_FORMS[f] + (" (read row by row)" if f == "image" and spec.images_as_rows else "") for f in spec.data
        )
        of_shape = f" of shape {shape}" if shape else ""  # a text has no shape until it is read as token ids
        raise ConfigError(
            f"Model {model!r} trains on {takes}, but dataset {data.name!r} holds {DATA_FORMS[form]}{of_shape}."
        )


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
    from recipes.models._common import build_optimizer  # Keras

    kwargs = builder_kwargs(config, info)
    with plan.strategy.scope():
        model = get_spec(config["model"]).builder(**kwargs)
        build_optimizer(model)
    model.jit_compile = plan.jit_compile
    model.steps_per_execution = plan.steps_per_execution
    return model


def evaluate_model(model, test_ds, verbose=0) -> dict:
    """Test metrics as plain floats; the VAE's loss is reported as `negative_elbo` too."""
    results = model.evaluate(test_ds, return_dict=True, verbose=verbose)
    metrics = {k: float(v) for k, v in results.items()}
    if hasattr(model, "encode") and "loss" in metrics:
        metrics["negative_elbo"] = metrics["loss"]
    return metrics
