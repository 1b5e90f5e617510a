"""What a text becomes for a model: a vocabulary and a sequence length, learned from the training split
alone, and Keras's `TextVectorization` to make texts into token ids with them.

The texts are standardised as `TextVectorization` does by default ("lower_and_strip_punctuation":
lower case, then ASCII punctuation ``!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'`` removed, so "don't" is
"dont") and split on whitespace. Id 0 is padding and 1 stands for every word out of the vocabulary;
the vocabulary's words are ids 2, 3, ... from the most frequent down (ties in alphabetical order, so
every process of a job and every later reading learns the same ids). A text longer than the sequence
length is cut at its end, a shorter one padded at its end (`TextVectorization`'s way, and the one
cuDNN's masked LSTM takes).

`TextVectorization` runs on TensorFlow whatever the Keras backend: where TensorFlow is not installed,
learning or applying a vocabulary raises `MissingDependency` in one line.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from recipes._optional import require_tensorflow

STANDARDIZE = "lower_and_strip_punctuation"
SPLIT = "whitespace"
MAX_TOKENS = 20000  # ids in all, padding and out-of-vocabulary included (keras-io's IMDB examples)
# A word seen once in training has one example to learn its embedding from: in texts of some length it is
# mostly noise, out of the vocabulary (fortunes, median 17 words: 0.539 with it out, 0.518 in); in short
# texts it is a good part of its text (Debian synopses, median 6 words: 0.741 out, 0.752 in;
# scripts/bench/text.py, means over seeds).
MIN_COUNT, SHORT_TEXT_MIN_COUNT, SHORT_TEXT = 2, 1, 10  # SHORT_TEXT: a median length in words
LENGTH_QUANTILE = 0.95  # the sequence length holds 95% of the training texts whole
LENGTH_MULTIPLE = 8
LENGTH_RANGE = (16, 256)
RESERVED = ("", "[UNK]")  # ids 0 and 1
_BATCH = 1024
TEXTS = "Text data (Keras's TextVectorization)"  # what needs TensorFlow, in the one-line refusal


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """A text data set's vocabulary and sequence length.

    Attributes:
        tokens: the words, id 2 first (padding and out-of-vocabulary, ids 0 and 1, not included).
        sequence_length: token ids per text.
        note: how they were chosen, one line for the log (empty when given, not learned).
    """

    tokens: tuple
    sequence_length: int
    note: str = ""

    @property
    def size(self) -> int:
        """Token ids are in `[0, size)`."""
        return len(self.tokens) + len(RESERVED)


def _dataset(texts):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(tf.constant([str(t) for t in texts], tf.string)).batch(_BATCH)


def vectorizer(tokens, sequence_length):
    """Keras's `TextVectorization` with these words (ids 2, ...) and this length."""
    require_tensorflow(TEXTS)
    import keras

    return keras.layers.TextVectorization(
        standardize=STANDARDIZE,
        split=SPLIT,
        output_mode="int",
        vocabulary=list(tokens) or ["[empty]"],
        output_sequence_length=sequence_length,
    )


def learn(texts, *, max_tokens=None, sequence_length=None) -> Vocabulary:
    """The vocabulary and sequence length of the training texts `texts`.

    Args:
        max_tokens: token ids in all (the words kept, plus 2), the most frequent words first.
            Defaults to `None`: up to `MAX_TOKENS`, every word seen at least twice, or every
            word when the texts are short (a median of at most 10 words).
        sequence_length: token ids per text. Defaults to `None`: the 95th percentile of the
            training texts' lengths in words, rounded up to a multiple of 8, within 16..256.
    """
    require_tensorflow(TEXTS)
    import keras

    # every word of the training texts, padded per batch (ragged output is TensorFlow's alone)
    counter = keras.layers.TextVectorization(standardize=STANDARDIZE, split=SPLIT, output_mode="int")
    counter.adapt(_dataset(texts))
    seen = counter.get_vocabulary()  # "", "[UNK]", then every word of the training texts
    counts = np.zeros(len(seen), np.int64)
    lengths = []
    for ids in _dataset(texts).map(counter).as_numpy_iterator():
        counts += np.bincount(ids.ravel(), minlength=len(seen))
        lengths.append(np.count_nonzero(ids, axis=1))
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    words = [(-int(n), str(w)) for w, n in zip(seen[2:], counts[2:])]
    words.sort()
    median = float(np.median(lengths)) if len(lengths) else 0.0
    min_count = SHORT_TEXT_MIN_COUNT if median <= SHORT_TEXT else MIN_COUNT
    frequent = [w for n, w in words if -n >= min_count] or [w for _, w in words]
    cap = (max_tokens if max_tokens is not None else MAX_TOKENS) - len(RESERVED)
    tokens = tuple(frequent[: max(cap, 1)])
    limit = "" if max_tokens is None and len(frequent) <= cap else f", the {len(tokens):,} most frequent"
    note = (
        f"vocabulary: {len(tokens):,} words of the {len(words):,} in the training split "
        f"({'seen at least twice' if len(frequent) < len(words) else 'every word'}{limit}; the texts' median "
        f"length is {median:g} words: {'short texts keep' if min_count == 1 else 'longer texts leave out'} words "
        f"seen once), ids 2..{len(tokens) + 1}; "
        f"0 pads, 1 is any other word"
    )
    if sequence_length is None:
        quantile = float(np.quantile(lengths, LENGTH_QUANTILE)) if len(lengths) else 1.0
        low, high = LENGTH_RANGE
        sequence_length = int(min(high, max(low, LENGTH_MULTIPLE * math.ceil(quantile / LENGTH_MULTIPLE))))
        whole = float(np.mean(lengths <= sequence_length)) if len(lengths) else 1.0
        note += (
            f"; sequence length {sequence_length} (95th percentile of the training texts' {len(lengths):,} lengths "
            f"in words, {quantile:.0f}; {whole:.0%} fit whole, longer ones are cut at the end)"
        )
    else:
        note += f"; sequence length {sequence_length} (set)"
    return Vocabulary(tokens, int(sequence_length), note)


def vectorize(texts, vocabulary: Vocabulary) -> np.ndarray:
    """`texts` as token ids: int32 `(len(texts), vocabulary.sequence_length)`."""
    layer = vectorizer(vocabulary.tokens, vocabulary.sequence_length)
    parts = [np.asarray(ids, np.int32) for ids in _dataset(texts).map(layer).as_numpy_iterator()]
    return np.concatenate(parts) if parts else np.zeros((0, vocabulary.sequence_length), np.int32)


def describe(vocabulary: Vocabulary) -> str:
    """One line: what is done to a raw text."""
    return (
        f"texts lower-cased, punctuation stripped, split on whitespace; {len(vocabulary.tokens):,} words "
        f"(ids 2..{vocabulary.size - 1}, others 1); cut or padded at the end to {vocabulary.sequence_length}"
    )
