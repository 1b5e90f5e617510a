"""Variational autoencoder (Kingma & Welling, 2013), convolutional or dense."""

from __future__ import annotations

import math

import keras
from keras import ops

from recipes.models import _common as c
from recipes.models._transpose import Conv2DTranspose
from recipes.spec import register_model


@keras.saving.register_keras_serializable(package="recipes")
class Sampling(keras.layers.Layer):
    """The reparameterisation trick: `z = mean + exp(log_var / 2) * eps`, eps ~ N(0, I).

    Args:
        seed: seed of the layer's `SeedGenerator`. Defaults to `None`.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="sampling_seed")

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def reconstruction_nats(x, x_hat):
    """Binary cross-entropy of each example, summed over its values: `(batch,)` float32 nats."""
    x, x_hat = ops.cast(x, "float32"), ops.cast(x_hat, "float32")
    bce = ops.binary_crossentropy(x, x_hat)
    return ops.sum(ops.reshape(bce, (ops.shape(bce)[0], -1)), axis=1)


def kl_per_dimension(z_mean, z_log_var):
    """KL(q(z|x) || N(0, I)) of each latent dimension, mean over the batch: `(latent_dim,)` float32 nats."""
    z_mean, z_log_var = ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")
    return ops.mean(-0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=0)


def kl_divergence(z_mean, z_log_var):
    """KL(q(z|x) || N(0, I)) summed over the latent dimensions, mean over the batch, in nats."""
    return ops.sum(kl_per_dimension(z_mean, z_log_var))


def free_bits_slack(z_mean, z_log_var, free_bits):
    """What the free-bits objective adds to the KL term: `sum_d max(KL_d, free_bits) - KL_d`.

    Below `free_bits` nats a latent dimension's KL costs nothing more, so the encoder is
    not pushed to give up the last nats of information it carries (Kingma et al., 2016).
    """
    kl = kl_per_dimension(z_mean, z_log_var)
    return ops.sum(ops.maximum(kl, free_bits) - kl)


@keras.saving.register_keras_serializable(package="recipes")
class ReconstructionLoss(keras.losses.Loss):
    """The negative ELBO's reconstruction term: binary cross-entropy summed over the values
    of each example, averaged over the batch (Keras scales it across replicas)."""

    def __init__(self, name="reconstruction", reduction="sum_over_batch_size", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)

    def call(self, y_true, y_pred):
        return reconstruction_nats(y_true, y_pred)


@keras.saving.register_keras_serializable(package="recipes")
class VAE(keras.Model):
    """An encoder and a decoder trained on the negative ELBO with `fit()`.

    `fit(x)` takes a dataset of examples (or of `(x, labels)`, labels ignored)
    in `value_range` (0, 1). Logs `loss`, `reconstruction_loss` (binary
    cross-entropy summed over the values of one example) and `kl_loss` (KL
    divergence from N(0, I), summed over the latent dimensions), both in nats
    per example, averaged over the batch. Calling the model on `x` returns the
    reconstruction of its mean code (in training, of a sampled code, with the KL term
    added as a loss). Training is Keras's own step through `compute_loss`, so loss
    scaling and distribution work as for any Keras model.

    Args:
        encoder: functional model, x -> `[z_mean, z_log_var, z]`.
        decoder: functional model, z -> x in [0, 1].
        latent_dim: size of the code.
        seed: seed of the model's `SeedGenerator`, used by `sample(n)` without
            a seed. Defaults to `None`.
        free_bits: nats of KL per latent dimension that training does not
            penalise (the free-bits objective); `0.0` is the plain ELBO. The
            logged losses are always the plain ELBO's. Defaults to `0.0`.
    """

    value_range = (0.0, 1.0)

    def __init__(self, encoder, decoder, latent_dim, seed=None, free_bits=0.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = c.check_int("latent_dim", latent_dim)
        if not c.is_real(free_bits) or not free_bits >= 0.0:
            raise ValueError(f"free_bits must be a number >= 0. Received: free_bits={free_bits!r}")
        self.free_bits = float(free_bits)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="prior_seed")
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.built = True  # both halves are built functional models

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, x, training=False):
        z_mean, z_log_var, z = self.encoder(x, training=training)
        if training:  # fit(): decode the sampled code, and the KL term joins the loss
            self.add_loss(kl_divergence(z_mean, z_log_var))
            if self.free_bits:
                self.add_loss(free_bits_slack(z_mean, z_log_var, self.free_bits))
            return self.decoder(z, training=True)
        return self.decoder(z_mean, training=False)

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """`keras.Model.compile` whose loss is the negative ELBO's reconstruction term
        (`ReconstructionLoss`) unless another is given; the KL term is added by `call`."""
        super().compile(optimizer=optimizer, loss=ReconstructionLoss() if loss is None else loss, **kwargs)

    def compile_from_config(self, config):
        # what Keras does for models whose compile() is its own (it skips custom ones)
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Keras's own step (every backend, loss scaling, distribution) with the images as
        # their own target: labels in the data are ignored.
        x = c.batch_images(x)
        if not training:
            # evaluate(): the ELBO's one-sample estimate with a sampled code, not the mean code
            # that call(training=False) decodes for predictions; Keras's own test step on every backend
            losses = self.compute_losses(x, training=False)
            self._update_metrics(losses)
            return losses[0]
        total = super().compute_loss(x, x, y_pred, sample_weight, training=training)
        reconstruction = ops.mean(reconstruction_nats(x, y_pred))
        kl = ops.cast(self.losses[0], "float32") if self.losses else 0.0  # the plain KL; [1] is free bits' slack
        self._update_metrics((reconstruction + kl, reconstruction, kl))
        return total

    def encode(self, x, batch_size=256):
        """Returns the mean code of each example of `x`, float32 `(n, latent_dim)`."""
        return c.batched(lambda b: c.infer(self.encoder, b)[0], x, batch_size)

    def decode(self, z, batch_size=256):
        """Returns the decoded examples of the codes `z`, float32 in [0, 1]."""
        return c.batched(lambda b: c.infer(self.decoder, b), z, batch_size)

    def sample(self, n, seed=None, batch_size=256):
        """Decodes `n` codes drawn from the prior N(0, I); the same int `seed`, the same samples."""
        n = c.check_int("n", n)
        z = keras.random.normal((n, self.latent_dim), seed=self.seed_generator if seed is None else seed)
        return self.decode(ops.convert_to_numpy(z), batch_size)

    generate = sample

    def compute_losses(self, x, training=False):
        """Returns `(loss, reconstruction_loss, kl_loss)`, nats per example, mean over the batch,
        for the sampled code (the ELBO's one-sample estimate)."""
        z_mean, z_log_var, z = self.encoder(x, training=training)
        reconstruction = ops.mean(reconstruction_nats(x, self.decoder(z, training=training)))
        kl = kl_divergence(z_mean, z_log_var)
        return reconstruction + kl, reconstruction, kl

    def _update_metrics(self, losses):
        for tracker, value in zip(self.metrics, losses):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "latent_dim": self.latent_dim,
            "seed": self.seed,
            "free_bits": self.free_bits,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


@register_model(
    "vae",
    task="generation",
    inputs="any",
    # batch 16, Adam 2e-3: the 1,294 training digits give 81 steps an epoch, varied samples by epoch 5
    # (samples' mean pairwise distance 1.4 after 5 epochs), held-out -ELBO 24.9 after 30 (keras-io's 26.0)
    defaults={"epochs": 30, "batch_size": 16, "learning_rate": 2e-3},
    description="Variational autoencoder (Kingma & Welling 2013; the keras-io conv VAE)",
)
def build_vae(
    *,
    input_shape=(28, 28, 1),
    latent_dim: int = 2,
    filters=(32, 64),
    hidden_units=None,
    free_bits: float = 1.5,
    optimizer="adam",
    learning_rate: float | None = None,
    seed: int | None = None,
    compile: bool = True,
) -> VAE:
    """Builds a variational autoencoder for images `(H, W, C)` or flat vectors `(features,)`.

    For images (the keras-io example): encoder Conv2D 32 s2, Conv2D 64 s2
    (3x3, ReLU), Dense 16, then Dense `z_mean` and `z_log_var` and the
    `Sampling` layer `z`; decoder Dense (H/4)*(W/4)*64, Conv2DTranspose 64 s2,
    Conv2DTranspose 32 s2, Conv2DTranspose C with a sigmoid. For flat inputs:
    Dense layers of `hidden_units` each way and a sigmoid Dense output.
    Inputs must be in [0, 1] (the Bernoulli decoder of the paper).

    Layer names: encoder `block{i}_conv`, `flatten`, `fc{i}` (flat inputs:
    `dense{i}`), `z_mean`, `z_log_var`, `z`; decoder `fc{i}` (for
    `hidden_units[1:]`), `project_dense`, `project_reshape`, `block{i}_convT`
    (flat inputs: `dense{i}`), `reconstruction`.

    Reference:
    - [Kingma & Welling, 2013](https://arxiv.org/abs/1312.6114)
    - [keras-io VAE example](https://keras.io/examples/generative/vae/)

    Args:
        input_shape: `(H, W, C)` with H and W divisible by 2**len(filters), or
            `(features,)`. Defaults to `(28, 28, 1)`.
        latent_dim: size of the code. Defaults to `2`.
        filters: filters of the encoder's stride-2 convolutions (mirrored in
            the decoder); images only. Defaults to `(32, 64)`.
        hidden_units: widths of the dense layers after the convolutions (images;
            the decoder mirrors all but the first, as in keras-io) or of the
            whole encoder (flat inputs; mirrored in the decoder).
            Defaults to `(16,)` for images, `(512,)` for flat inputs.
        free_bits: nats of KL per latent dimension left unpenalised in
            training (see `VAE`), against posterior collapse: on small images
            the KL term outweighs what a code saves in reconstruction early in
            training, the encoder learns to ignore the input and every sample
            is the same average image (on the bundled 8x8 digits, KL 0.005
            nats after 5 epochs; with 1.5 free bits 2.8 nats and varied
            samples, and a better held-out ELBO after 30 epochs: 24.9 nats
            against keras-io's 26.0). `0.0` is the plain ELBO of the paper and
            of keras-io. Defaults to `1.5`.
        optimizer: optimizer name or instance. Defaults to `"adam"`.
        learning_rate: overrides the optimizer's learning rate. Defaults to `None`.
        seed: seed of the sampling and prior `SeedGenerator`s. Defaults to `None`.
        compile: return the model compiled. Defaults to `True`.

    Returns:
        A `VAE` named `"vae"` with `encoder` and `decoder` sub-models;
        `value_range == (0.0, 1.0)`.

    Raises:
        ValueError, TypeError: for an invalid argument; the message names it.
    """
    if not isinstance(input_shape, (list, tuple)) or len(input_shape) not in (1, 3):
        raise ValueError(
            f"input_shape must be (height, width, channels) or (features,). Received: input_shape={input_shape!r}"
        )
    input_shape = c.check_shape("input_shape", input_shape, rank=len(input_shape))
    latent_dim = c.check_int("latent_dim", latent_dim)
    filters = c.check_int_tuple("filters", filters)
    image = len(input_shape) == 3
    hidden_units = c.check_int_tuple("hidden_units", hidden_units or ((16,) if image else (512,)))
    opt = c.make_optimizer(optimizer, learning_rate)
    if image:
        scale = 2 ** len(filters)
        if input_shape[0] % scale or input_shape[1] % scale:
            raise ValueError(
                f"input_shape must have a height and width divisible by {scale} "
                f"(2**len(filters)). Received: input_shape={input_shape!r}"
            )
    relu = dict(activation="relu")
    out_dtype = c.output_dtype()

    # Encoder
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    if image:
        for i, f in enumerate(filters, start=1):
            x = keras.layers.Conv2D(f, 3, strides=2, padding="same", name=f"block{i}_conv", **relu)(x)
        feature_shape = tuple(x.shape[1:])
        x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(hidden_units, start=1):
        x = keras.layers.Dense(units, name=f"fc{i}" if image else f"dense{i}", **relu)(x)
    z_mean = keras.layers.Dense(latent_dim, dtype=out_dtype, name="z_mean")(x)
    z_log_var = keras.layers.Dense(latent_dim, dtype=out_dtype, name="z_log_var")(x)
    z = Sampling(seed=seed, dtype=out_dtype, name="z")([z_mean, z_log_var])
    encoder = keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")

    # Decoder
    latent = keras.Input(shape=(latent_dim,), name="latent")
    x = latent
    for i, units in enumerate(reversed(hidden_units[1:] if image else hidden_units), start=1):
        x = keras.layers.Dense(units, name=f"fc{i}" if image else f"dense{i}", **relu)(x)
    if image:
        x = keras.layers.Dense(math.prod(feature_shape), name="project_dense", **relu)(x)
        x = keras.layers.Reshape(feature_shape, name="project_reshape")(x)
        for i, f in enumerate(reversed(filters), start=1):
            x = Conv2DTranspose(f, 3, strides=2, padding="same", name=f"block{i}_convT", **relu)(x)
        outputs = Conv2DTranspose(
            input_shape[-1], 3, padding="same", activation="sigmoid", dtype=out_dtype, name="reconstruction"
        )(x)
    else:
        outputs = keras.layers.Dense(input_shape[0], activation="sigmoid", dtype=out_dtype, name="reconstruction")(x)
    decoder = keras.Model(latent, outputs, name="decoder")

    vae = VAE(encoder, decoder, latent_dim, seed=seed, free_bits=free_bits, name="vae")
    if compile:
        vae.compile(optimizer=opt)
    return vae
