"""LSTM sequence classifier: token ids through an Embedding, or real-valued sequences."""

from __future__ import annotations

import keras

from recipes.models import _common as c
from recipes.spec import register_model

# On a CPU, an unrolled LSTM of 8 steps trained 1.5x faster than the symbolic loop
# (2 cores, TF 2.21; scripts/bench/train_throughput.py); long sequences would blow up
# the graph, so only short ones are unrolled. Not on JAX: XLA's loop (lax.scan) was as fast
# at 8 steps and 1.9x faster at 28, and compiled in 2 s where the unrolled step took 4.5-18 s
# (LSTM 128, forward and backward; scripts/bench/jax_cpu.py).
MAX_UNROLL_STEPS = 32
POOLINGS = ("last", "max", "mean", "max_mean")


@keras.saving.register_keras_serializable(package="recipes")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """The largest value of each feature over the steps a mask keeps: padding never wins.

    Keras's `GlobalMaxPooling1D` ignores masks, so a padded step's output (zeros) would beat
    every real step whose value is negative."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            lowest = keras.ops.full_like(inputs, -1e9 if inputs.dtype != "float16" else -6e4)
            inputs = keras.ops.where(keras.ops.expand_dims(keras.ops.cast(mask, "bool"), -1), inputs, lowest)
        return keras.ops.max(inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


TEXT_DEFAULTS = {
    "epochs": 20,
    "batch_size": 64,
    "learning_rate": 3e-3,
    "early_stopping": 2,
    "monitor": "val_accuracy",
    "model_args": {
        "units": [64],
        "bidirectional": True,
        "embedding_dim": 128,
        "embedding_dropout": 0.3,
        "pooling": "max",
        "dropout": 0.3,
    },
}
TEXT_REASONS = {  # candidates in plain Keras on the package's own text pipeline, then the command, over seeds
    "learning_rate": "Adam 3e-3 with dropout: 0.539 on fortunes (mean of 3 seeds) vs 0.503 at 1e-3, 0.537 at 1e-2; "
    "0.742 vs 0.733 at 1e-2 on the Debian synopses",
    "pooling": "max over the real steps: 0.547 vs 0.533 for the last state on fortunes, 0.743 vs 0.737 on Debian; "
    "max+mean 0.733",
    "bidirectional": "0.547 vs 0.527 for one LSTM on fortunes",
    "units": "one BiLSTM 64: 128 units 0.735 vs 0.743 on Debian, and slower",
    "embedding_dim": "128: 64 gave 0.526 on fortunes, 256 no gain (0.538, 0.743)",
    "embedding_dropout": "0.3 whole channels (SpatialDropout1D) and 0.3 before the head: +0.02 on fortunes at 1e-3",
    "dropout": "0.3, after the pooling: the command's 0.537 on fortunes vs 0.523 with it before the max; 0.5 gave "
    "0.524 on fortunes and 0.749 vs 0.748 on Debian",
    "batch_size": "64: as accurate as 32 (0.740 vs 0.741 on Debian) in half the steps; 128 lost 0.02 on fortunes",
    "early_stopping": "patience 2: the best epoch came at 2-5 of 20 on both corpora, patience 3 found the same",
    "monitor": "validation accuracy: the validation loss bottoms out an epoch or two before it (the model grows "
    "overconfident); stopping there gave the command 0.519 on fortunes vs 0.523 (3 seeds)",
    "epochs": "a ceiling: early stopping ends the run at the best validation accuracy",
}


@register_model(
    "lstm",
    task="classification",
    inputs="sequence",
    data=("text", "tokens", "sequence", "image"),
    images_as_rows=True,
    defaults={
        "epochs": 20,
        "batch_size": "auto",
        "learning_rate": 1e-2,
        "model_args": {"units": [128], "bidirectional": False},
    },
    reasons={
        "units": "one LSTM 128 began its first epoch 4-5 s sooner than 2 x BiLSTM 64 (tracing) at the same "
        "accuracy per epoch on the digits' rows (scripts/bench/time_to_accuracy.py)",
        "bidirectional": "see units",
        "batch_size": "auto (64 on the 1,294 digits, 128 on 5,400 32x32 shapes) with Adam 1e-2: 0.947 on the shapes "
        "at 18.5 s from start vs 27.4 s at 32; 0.85 on the digits at 5.7 s vs 5.9 s; at 1e-3, 64 took 7 epochs to "
        "0.80 on the digits (scripts/bench/time_to_accuracy.py)",
        "learning_rate": "see batch_size; measured on real-valued rows (texts have their own, below)",
    },
    # Texts (and token ids, which are texts already read): measured on two real corpora, Debian's
    # fortunes by category and Debian package synopses by section (scripts/bench/text.py), each
    # candidate over seeds, against the keras-io BiLSTM and TF-IDF + logistic regression.
    data_defaults={form: TEXT_DEFAULTS for form in ("text", "tokens")},
    data_reasons={form: TEXT_REASONS for form in ("text", "tokens")},
    description="(Bidirectional) stacked LSTM sequence classifier; the builder's defaults are the keras-io "
    "IMDB example (Embedding 20000x128, 2x BiLSTM 64); the command trains one LSTM 128 on rows, "
    "one max-pooled BiLSTM 64 on texts",
)
def build_lstm(
    *,
    input_shape=(None,),
    num_classes: int = 2,
    vocab_size: int | None = 20000,
    embedding_dim: int = 128,
    mask_zero: bool = True,
    embedding_dropout: float = 0.0,
    units=(64, 64),
    bidirectional: bool = True,
    pooling: str = "last",
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    unroll="auto",
    classifier_activation: str = "auto",
    optimizer="adam",
    learning_rate: float | None = None,
    compile: bool = True,
) -> keras.Model:
    """Builds a stacked, optionally bidirectional, LSTM classifier of sequences.

    Two kinds of input:
    - token ids (`vocab_size` given): `input_shape=(timesteps,)`, integer ids
      in `[0, vocab_size)` go through an `Embedding` of `embedding_dim`;
    - real-valued sequences (`vocab_size=None`): `input_shape=(timesteps, features)`,
      e.g. the rows of an image as `(28, 28)`.
    `timesteps` may be `None` for batches of any length.

    The defaults are the keras-io IMDB example: Embedding 20000x128, two
    Bidirectional LSTM(64) and one sigmoid unit for the two classes (binary
    cross-entropy), 2,757,761 parameters, on variable-length token ids.
    Each LSTM but the last returns its whole sequence to the next.

    With `mask_zero=True` id 0 is padding: the LSTMs skip it, so the result of
    a review does not depend on how much padding it got. (On GPU, cuDNN runs
    masked LSTMs only for right-padded sequences: `padding="post"` in
    `keras.utils.pad_sequences`; left padding falls back to a slower kernel.)

    How the last LSTM's sequence becomes one vector (`pooling`): its final state
    (`"last"`, the keras-io example), or the largest (`"max"`), mean (`"mean"`) or both
    (`"max_mean"`) of its outputs over the steps that are not padding (a BiLSTM with max
    pooling is InferSent's text encoder, Conneau et al. 2017).

    Layer names: `tokens`/`inputs`, `embedding`, `embedding_dropout` when
    `embedding_dropout > 0`, then `bidirectional1`, `bidirectional2`, ... wrapping
    `lstm1`, `lstm2`, ... (or `lstm1`, ... when `bidirectional=False`), `dropout1`,
    ... when `dropout > 0`, `max_pool`/`mean_pool` (`pooling`), `predictions`.

    Reference:
    - [Long Short-Term Memory](https://www.bioinf.jku.at/publications/older/2604.pdf)
      (Hochreiter & Schmidhuber, Neural Computation 1997)
    - [Bidirectional LSTM on IMDB](https://keras.io/examples/nlp/bidirectional_lstm_imdb/)
    - [Supervised Learning of Universal Sentence Representations from Natural Language
      Inference Data](https://arxiv.org/abs/1705.02364) (Conneau et al., EMNLP 2017): BiLSTM
      with max pooling

    Args:
        input_shape: `(timesteps,)` for token ids, `(timesteps, features)` for
            real-valued sequences. Defaults to `(None,)`.
        num_classes: number of classes. Defaults to `2`.
        vocab_size: number of token ids, or `None` for real-valued sequences.
            Defaults to `20000`.
        embedding_dim: size of the token embeddings. Defaults to `128`.
        mask_zero: treat token id 0 as padding. Defaults to `True`.
        embedding_dropout: rate of whole embedding channels dropped (`SpatialDropout1D`),
            token ids only. Defaults to `0.0`.
        units: units of each stacked LSTM. Defaults to `(64, 64)`.
        bidirectional: wrap each LSTM in `Bidirectional` (twice the units out).
            Defaults to `True`.
        pooling: `"last"`, `"max"`, `"mean"` or `"max_mean"` (see above). Defaults to
            `"last"`.
        dropout: dropout rate after each LSTM (after the pooling, for the last one, when
            `pooling` is not `"last"`). Defaults to `0.0`.
        recurrent_dropout: dropout rate on the recurrent state inside each
            LSTM (disables cuDNN). Defaults to `0.0`.
        unroll: unroll the recurrence into a fixed graph: `True`, `False`, or
            `"auto"`, which unrolls sequences of a known length up to
            `MAX_UNROLL_STEPS` when no GPU is visible (on a GPU, cuDNN's fused
            kernel is faster and needs `unroll=False`), except on JAX, whose loop is
            as fast and compiles sooner. Unrolling changes speed and
            memory, not the weights or the results. Defaults to `"auto"`.
        classifier_activation: `"auto"` (softmax, or one sigmoid unit when
            `num_classes=2`), `"softmax"` or `"sigmoid"`. Defaults to `"auto"`.
        optimizer: optimizer name or instance. Defaults to `"adam"`.
        learning_rate: overrides the optimizer's learning rate. Defaults to `None`.
        compile: return the model compiled with cross-entropy and accuracy.
            Defaults to `True`.

    Returns:
        A `keras.Model` named `"lstm"`, compiled unless `compile=False`.

    Raises:
        ValueError, TypeError: for an invalid argument; the message names it.
    """
    tokens = vocab_size is not None
    if tokens:
        vocab_size = c.check_int("vocab_size", vocab_size, minimum=2)
        embedding_dim = c.check_int("embedding_dim", embedding_dim)
        if isinstance(input_shape, (list, tuple)) and len(input_shape) != 1:
            raise ValueError(
                "input_shape must be (timesteps,) for token ids; pass vocab_size=None for "
                f"real-valued sequences. Received: input_shape={tuple(input_shape)!r}"
            )
        input_shape = c.check_shape("input_shape", input_shape, rank=1, allow_none=True)
    else:
        input_shape = c.check_shape("input_shape", input_shape, rank=2, allow_none=True)
        if input_shape[1] is None:
            raise ValueError(f"input_shape must give the number of features. Received: input_shape={input_shape!r}")
    if not isinstance(mask_zero, bool):
        raise TypeError(f"mask_zero must be True or False. Received: mask_zero={mask_zero!r}")
    if not isinstance(bidirectional, bool):
        raise TypeError(f"bidirectional must be True or False. Received: bidirectional={bidirectional!r}")
    units = c.check_int_tuple("units", units)
    dropout = c.check_rate("dropout", dropout)
    embedding_dropout = c.check_rate("embedding_dropout", embedding_dropout)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}. Received: pooling={pooling!r}")
    recurrent_dropout = c.check_rate("recurrent_dropout", recurrent_dropout)
    if unroll == "auto":
        from recipes.hardware import has_gpu

        short = input_shape[0] is not None and input_shape[0] <= MAX_UNROLL_STEPS
        unroll = short and keras.backend.backend() != "jax" and not has_gpu()
    elif not isinstance(unroll, bool):
        raise ValueError(f"unroll must be True, False or 'auto'. Received: unroll={unroll!r}")
    c.head_units(num_classes, classifier_activation)

    if tokens:
        inputs = keras.Input(shape=input_shape, dtype="int32", name="tokens")
        x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=mask_zero, name="embedding")(inputs)
        if embedding_dropout:
            x = keras.layers.SpatialDropout1D(embedding_dropout, name="embedding_dropout")(x)
    else:
        inputs = keras.Input(shape=input_shape, name="inputs")
        x = inputs
    for i, n in enumerate(units, start=1):
        sequences = i < len(units) or pooling != "last"
        layer = keras.layers.LSTM(
            n, return_sequences=sequences, recurrent_dropout=recurrent_dropout, unroll=unroll, name=f"lstm{i}"
        )
        backward = None
        if bidirectional and unroll and tokens and mask_zero and keras.backend.backend() == "torch":
            # Keras 3.15's PyTorch RNN crashes on an unrolled, masked LSTM that runs backwards
            # (backend/torch/rnn.py: `torch.flip(mask_list, dims=mask_list.shape)` gets a tuple):
            # the backward half loops instead. Same weights and names, so files load anywhere.
            backward = keras.layers.LSTM(
                n,
                return_sequences=sequences,
                recurrent_dropout=recurrent_dropout,
                unroll=False,
                go_backwards=True,
                name=f"backward_lstm{i}",
            )
        x = (
            keras.layers.Bidirectional(layer, backward_layer=backward, name=f"bidirectional{i}")(x)
            if bidirectional
            else layer(x)
        )
        if dropout and (i < len(units) or pooling == "last"):
            x = keras.layers.Dropout(dropout, name=f"dropout{i}")(x)
    if pooling != "last":
        pooled = []
        if "max" in pooling:
            pooled.append(MaskedGlobalMaxPooling1D(name="max_pool")(x))
        if "mean" in pooling:
            pooled.append(keras.layers.GlobalAveragePooling1D(name="mean_pool")(x))
        x = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="pool")(pooled)
        if dropout:  # after the pooling: dropped steps before a max would inflate what it picks in training
            x = keras.layers.Dropout(dropout, name=f"dropout{len(units)}")(x)
    outputs = c.classifier_head(x, num_classes, classifier_activation)
    model = keras.Model(inputs, outputs, name="lstm")
    return c.compile_classifier(model, optimizer=optimizer, learning_rate=learning_rate, compile=compile)
