"""DCGAN: deep convolutional generative adversarial network (Radford et al., 2015)."""

from __future__ import annotations

import keras
from keras import ops

from recipes.models import _common as c
from recipes.models._dcgan_nets import _stages, networks
from recipes.spec import register_model


@keras.saving.register_keras_serializable(package="recipes")
class DCGAN(keras.Model):
    """A generator and a discriminator trained against each other with `fit()`.

    `fit(images)` takes a dataset of images (or of `(images, labels)`, labels
    ignored) in `value_range` (-1, 1). Each step updates the discriminator on one
    real and one generated batch, then the generator with the non-saturating
    loss (labels "real" for generated images). Logs `d_loss`, `g_loss`,
    `d_acc_real` and `d_acc_fake` (the discriminator's accuracy on each half).
    Calling the model on latent vectors runs the generator. Trains on TensorFlow,
    JAX and PyTorch (`steps_per_execution=1` there) with one algorithm; `optimizer`
    shows both optimizers to Keras as one (JAX's trainer keeps one in its state).

    Args:
        generator: functional model, latent vectors `(latent_dim,)` -> images.
        discriminator: functional model, images -> probability of "real", `(1,)`.
        latent_dim: size of the latent vectors.
        label_smoothing: one-sided label smoothing; the discriminator's target for
            real images is `1 - label_smoothing` (Salimans et al., 2016). The
            paper uses none. Defaults to `0.0`.
        seed: seed of the model's `SeedGenerator`, which draws the latent vectors
            during training and for `generate(n)` without a seed. Defaults to `None`.
    """

    value_range = (-1.0, 1.0)

    def __init__(self, generator, discriminator, latent_dim, label_smoothing=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = c.check_int("latent_dim", latent_dim)
        self.label_smoothing = c.check_rate("label_smoothing", label_smoothing)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="latent_seed")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_acc_real_tracker = keras.metrics.Mean(name="d_acc_real")
        self.d_acc_fake_tracker = keras.metrics.Mean(name="d_acc_fake")
        self.d_optimizer = self.g_optimizer = self.loss_fn = None
        self.built = True  # both halves are built functional models

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_acc_real_tracker, self.d_acc_fake_tracker]

    def compile(self, d_optimizer=None, g_optimizer=None, loss_fn=None, **kwargs):
        """Configures the two optimizers and the loss.

        Args:
            d_optimizer, g_optimizer: optimizers of the discriminator and of the
                generator (names or instances; two distinct instances). Default to
                the paper's `Adam(learning_rate=2e-4, beta_1=0.5)`.
            loss_fn: a Keras loss, its name, or `fn(y_true, y_prob)` returning
                per-example values; averaged over the batch (a `Loss` object's own
                `reduction` is not used). Defaults to `"binary_crossentropy"`.
            **kwargs: `jit_compile`, `run_eagerly`, `steps_per_execution`, as for
                `keras.Model.compile()`.

        Under the `"mixed_float16"` policy both optimizers are wrapped in a
        `LossScaleOptimizer`, as `keras.Model.compile()` does for its one.
        """
        if "optimizer" in kwargs:
            raise TypeError(
                "DCGAN.compile() takes d_optimizer and g_optimizer, not optimizer. "
                f"Received: optimizer={kwargs['optimizer']!r}"
            )
        d_optimizer = _optimizer(d_optimizer, "d_optimizer")
        g_optimizer = _optimizer(g_optimizer, "g_optimizer")
        if d_optimizer is g_optimizer:
            raise ValueError(
                "d_optimizer and g_optimizer must be two distinct optimizer instances. "
                f"Received: d_optimizer=g_optimizer={d_optimizer!r}"
            )
        loss_fn = keras.losses.get(loss_fn or "binary_crossentropy")
        super().compile(optimizer=None, **kwargs)
        self._gan_compile_config = keras.saving.serialize_keras_object(
            dict(d_optimizer=d_optimizer, g_optimizer=g_optimizer, loss_fn=loss_fn)
        )
        if self.dtype_policy.name == "mixed_float16":
            d_optimizer, g_optimizer = (
                opt
                if isinstance(opt, keras.optimizers.LossScaleOptimizer)
                else keras.optimizers.LossScaleOptimizer(opt, name=f"{prefix}_loss_scale_optimizer")
                for opt, prefix in ((d_optimizer, "d"), (g_optimizer, "g"))
            )
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn
        self.optimizer = _OptimizerPair(self)
        # Build the optimizer variables now, so that load_model() and
        # BackupAndRestore find them to restore into.
        self.optimizer.build(self.trainable_variables)

    def get_compile_config(self):
        if not self.compiled or not hasattr(self, "_gan_compile_config"):
            return {}
        return {
            **self._gan_compile_config,
            "jit_compile": self._jit_compile,
            "run_eagerly": self.run_eagerly,
            "steps_per_execution": self.steps_per_execution,
        }

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    def call(self, latent, training=False):
        return self.generator(latent, training=training)

    def generate(self, n, seed=None, batch_size=256):
        """Returns `n` generated images, a float32 array `(n, H, W, C)` in [-1, 1].

        The same int `seed` gives the same images; `seed=None` draws from the
        model's `SeedGenerator`.
        """
        n = c.check_int("n", n)
        latent = keras.random.normal((n, self.latent_dim), seed=self.seed_generator if seed is None else seed)
        return c.batched(lambda z: c.infer(self.generator, z), ops.convert_to_numpy(latent), batch_size)

    def train_step(self, *args):
        """`train_step(data)` on TensorFlow and PyTorch, `train_step(state, data)` on JAX."""
        backend = keras.backend.backend()
        if backend == "jax":
            return self._jax_step(*args, training=True)
        update = {"tensorflow": self._tf_update, "torch": self._torch_update}.get(backend)
        if update is None:
            raise NotImplementedError(
                f"DCGAN.train_step supports tensorflow, jax and torch. Received: backend={backend!r}"
            )
        return self._train_step(c.batch_images(args[0]), update)

    def test_step(self, *args):
        """`test_step(data)` on TensorFlow and PyTorch, `test_step(state, data)` on JAX."""
        if keras.backend.backend() == "jax":
            return self._jax_step(*args, training=False)
        return self._test_step(c.batch_images(args[0]))

    def _train_step(self, real, update):
        """The algorithm, the same on every backend; `update(half, optimizer, loss_fn)` is the
        backend's gradient step on `half` for `loss_fn() -> (loss, aux)`, returning `(loss, aux)`."""
        batch = ops.shape(real)[0]
        fake = ops.stop_gradient(self.generator(self._latent(batch), training=True))
        d_loss, (p_real, p_fake) = update(
            self.discriminator, self.d_optimizer, lambda: self._d_loss(real, fake, training=True)
        )
        g_loss, _ = update(
            self.generator, self.g_optimizer, lambda: (self._g_loss(self._latent(batch), training=True), ())
        )
        return self._update_metrics(d_loss, g_loss, p_real, p_fake)

    def _test_step(self, real):
        batch = ops.shape(real)[0]
        fake = self.generator(self._latent(batch), training=False)
        d_loss, (p_real, p_fake) = self._d_loss(real, fake, training=False)
        g_loss = self._g_loss(self._latent(batch), training=False)
        return self._update_metrics(d_loss, g_loss, p_real, p_fake)

    def _tf_update(self, half, optimizer, loss_fn):
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss, aux = loss_fn()
            # Replica gradients are summed: scale like Keras losses do.
            scaled = optimizer.scale_loss(loss / replicas)
        variables = half.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return loss, aux

    def _torch_update(self, half, optimizer, loss_fn):
        import torch

        self.zero_grad()
        loss, aux = loss_fn()
        optimizer.scale_loss(loss).backward()
        variables = half.trainable_variables
        with torch.no_grad():
            optimizer.apply([v.value.grad for v in variables], variables)
        return loss, aux

    def _jax_step(self, state, data, training):
        """Runs the step inside a `StatelessScope` holding the trainer's `state`; returns the new state.

        The state is `(trainable, non_trainable, optimizer, metrics)` values when training and
        `(trainable, non_trainable, metrics)` when testing; `non_trainable` carries the batch-norm
        statistics and the `SeedGenerator`'s state, `optimizer` the variables of `self.optimizer`.
        """
        groups = [self.trainable_variables, self.non_trainable_variables, self.metrics_variables]
        if training:
            groups.insert(2, self.optimizer.variables)
        mapping = [(v, value) for variables, values in zip(groups, state) for v, value in zip(variables, values)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            real = c.batch_images(data)
            logs = self._train_step(real, self._jax_update) if training else self._test_step(real)
        return logs, tuple([scope.get_current_value(v) for v in variables] for variables in groups)

    def _jax_update(self, half, optimizer, loss_fn):
        """The gradient step of `half`, run inside `_jax_step`'s scope, whose values it reads and updates."""
        import jax

        params = half.trainable_variables
        state = self.trainable_variables + self.non_trainable_variables + optimizer.variables

        def scaled_loss(values):
            mapping = [(v, v.value) for v in state] + list(zip(params, values))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                loss, aux = loss_fn()
                scaled = optimizer.scale_loss(loss)
            return scaled, (loss, aux, [scope.get_current_value(v) for v in self.non_trainable_variables])

        values = [v.value for v in params]
        grads, (loss, aux, non_trainable) = jax.grad(scaled_loss, has_aux=True)(values)
        values, optimizer_values = optimizer.stateless_apply([v.value for v in optimizer.variables], grads, values)
        for v, value in zip(
            self.non_trainable_variables + params + optimizer.variables, non_trainable + values + optimizer_values
        ):
            v.assign(value)
        return loss, aux

    def _latent(self, batch):
        return keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)

    def _d_loss(self, real, fake, training):
        p_real = ops.cast(self.discriminator(real, training=training), "float32")
        p_fake = ops.cast(self.discriminator(fake, training=training), "float32")
        real_target = ops.full_like(p_real, 1.0 - self.label_smoothing)
        return self._loss(real_target, p_real) + self._loss(ops.zeros_like(p_fake), p_fake), (p_real, p_fake)

    def _g_loss(self, latent, training):
        p = ops.cast(self.discriminator(self.generator(latent, training=training), training=training), "float32")
        return self._loss(ops.ones_like(p), p)

    def _loss(self, y_true, y_prob):
        fn = self.loss_fn.call if isinstance(self.loss_fn, keras.losses.Loss) else self.loss_fn
        return ops.mean(fn(y_true, y_prob))

    def _update_metrics(self, d_loss, g_loss, p_real, p_fake):
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_acc_real_tracker.update_state(ops.cast(p_real > 0.5, "float32"))
        self.d_acc_fake_tracker.update_state(ops.cast(p_fake < 0.5, "float32"))
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "label_smoothing": self.label_smoothing,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


class _OptimizerPair:
    """`DCGAN.optimizer`: the two optimizers as the one Keras's trainers expect.

    The JAX trainer keeps `optimizer.variables` (the discriminator's, then the
    generator's) in its state, and `fit()`, `load_model()` and `BackupAndRestore` build
    `optimizer` before they restore into it. It is not a `KerasSaveable`, so `.keras`
    files keep `d_optimizer` and `g_optimizer` as before, and not a Keras `Optimizer`,
    so Keras's callbacks log no learning rate of their own for it (the `recipes`
    callbacks log `d_learning_rate` and `g_learning_rate`).
    """

    def __init__(self, gan):
        self._halves = ((gan.d_optimizer, gan.discriminator), (gan.g_optimizer, gan.generator))

    @property
    def variables(self):
        return [v for optimizer, _ in self._halves for v in optimizer.variables]

    @property
    def built(self):
        return all(optimizer.built for optimizer, _ in self._halves)

    def build(self, var_list=None):
        for optimizer, half in self._halves:
            optimizer.build(half.trainable_variables)


def _optimizer(value, name):
    if value is None:
        return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5, name=name[0] + "_adam")
    if isinstance(value, str):
        return c.make_optimizer(value)
    if isinstance(value, keras.optimizers.Optimizer):
        return value
    raise TypeError(f"{name} must be an optimizer name or a keras.optimizers.Optimizer. Received: {name}={value!r}")


@register_model(
    "dcgan",
    task="generation",
    inputs="image",
    value_range=(-1.0, 1.0),
    image_side=28,
    defaults={"epochs": 50, "batch_size": 64, "validation_split": 0.0},
    description="DCGAN (Radford et al. 2015): strided-conv discriminator, "
    "transposed-conv generator, batch norm, Adam 2e-4/0.5",
)
def build_dcgan(
    *,
    input_shape=(28, 28, 1),
    latent_dim: int = 100,
    base_filters: int = 128,
    kernel_size: int = 5,
    learning_rate: float = 2e-4,
    beta_1: float = 0.5,
    label_smoothing: float = 0.0,
    seed: int | None = None,
    compile: bool = True,
) -> DCGAN:
    """Builds a DCGAN following the paper's architecture guidelines.

    Generator: Dense projection of the latent vector to `base x base` feature
    maps (7x7 for 28x28 images, 4x4 for 32x32 and 64x64), then one stride-2
    `Conv2DTranspose` per doubling up to the image size; batch norm and ReLU
    after every layer but the last, which is tanh. Discriminator: the mirror
    image, stride-2 `Conv2D` down to `base x base`, batch norm after every
    layer but the first, LeakyReLU(0.2), then one sigmoid unit. No pooling;
    weights drawn from N(0, 0.02). The widest layer has
    `base_filters * 2**(k-1)` filters for `k` doublings: for 64x64x3 and
    `base_filters=128` that is the paper's 1024-512-256-128 generator.

    Layer names are stable: generator `project_dense`, `project_bn`,
    `project_relu`, `project_reshape`, `block{i}_convT`, `block{i}_bn`,
    `block{i}_relu`, `output_convT`; discriminator `block{i}_conv`,
    `block{i}_bn`, `block{i}_lrelu`, `flatten`, `predictions`.

    Reference:
    - [Radford, Metz & Chintala, 2015](https://arxiv.org/abs/1511.06434)

    Args:
        input_shape: `(H, W, C)` of the images, square with a side of
            `4*2^k` or `7*2^k` (k >= 1), C 1 or 3. Defaults to `(28, 28, 1)`.
        latent_dim: size of the latent vectors. Defaults to `100`.
        base_filters: filters of the generator's last hidden layer and the
            discriminator's first layer; doubled per stage. Defaults to `128`.
        kernel_size: convolution kernel size. Defaults to `5` (the paper's code).
        learning_rate: Adam learning rate of both networks. Defaults to `2e-4`.
        beta_1: Adam beta_1 of both networks. Defaults to `0.5`.
        label_smoothing: one-sided label smoothing of the real targets.
            Defaults to `0.0` (none, as in the paper).
        seed: seed of the latent-vector `SeedGenerator`. Defaults to `None`.
        compile: return the model compiled with the two Adam optimizers.
            Defaults to `True`.

    Returns:
        A `DCGAN` named `"dcgan"` with `generator` and `discriminator`
        sub-models; images live in `value_range == (-1.0, 1.0)`.

    Raises:
        ValueError, TypeError: for an invalid argument; the message names it.
    """
    input_shape = c.check_shape("input_shape", input_shape, rank=3)
    if input_shape[-1] not in (1, 3):
        raise ValueError(f"input_shape must have 1 or 3 channels. Received: input_shape={input_shape!r}")
    base, k = _stages(input_shape)
    latent_dim = c.check_int("latent_dim", latent_dim)
    base_filters = c.check_int("base_filters", base_filters)
    kernel_size = c.check_int("kernel_size", kernel_size)
    label_smoothing = c.check_rate("label_smoothing", label_smoothing)
    if not c.is_real(beta_1) or not 0 <= beta_1 < 1:
        raise ValueError(f"beta_1 must be in [0, 1). Received: beta_1={beta_1!r}")
    d_optimizer = c.make_optimizer(keras.optimizers.Adam(beta_1=beta_1, name="d_adam"), learning_rate)
    g_optimizer = c.make_optimizer(keras.optimizers.Adam(beta_1=beta_1, name="g_adam"), learning_rate)
    generator, discriminator = networks(input_shape, base, k, latent_dim, base_filters, kernel_size)

    gan = DCGAN(generator, discriminator, latent_dim, label_smoothing=label_smoothing, seed=seed, name="dcgan")
    if compile:
        gan.compile(d_optimizer=d_optimizer, g_optimizer=g_optimizer)
    return gan
