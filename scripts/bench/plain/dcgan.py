"""The keras-io DCGAN (examples/generative/dcgan_overriding_train_step.py) at 28x28: the
generator projects to 7x7x128 and keeps the first two of its three stride-2 transposed
convolutions (7 -> 14 -> 28; the third would double to 56); the discriminator is as
written. Latent 128, Adam 1e-4 for both, batch 32, label noise, images in [0, 1].

Its probe scores 500 samples after every epoch with the judge of the recipe's run (the
classifier the recipe scores its own samples with, on the same real images): the Fréchet
distance of the judge's features, as `recipes` logs `val_frechet_distance`."""

import pathlib
import sys

import numpy as np
import tensorflow as tf
from _clock import EpochClock, arguments, keras, load
from keras import layers, ops

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3]))  # the judge, from this checkout
from recipes import judge as judge_lib  # noqa: E402
from recipes import run_judge, training  # noqa: E402
from recipes.quality import gaussian, sample_quality  # noqa: E402

args = arguments(epochs=30, judge=True)
data = load(args.data)
latent_dim = 128

discriminator = keras.Sequential(
    [
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(64, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Flatten(),
        layers.Dropout(0.2),
        layers.Dense(1, activation="sigmoid"),
    ],
    name="discriminator",
)
generator = keras.Sequential(
    [
        keras.Input(shape=(latent_dim,)),
        layers.Dense(7 * 7 * 128),
        layers.Reshape((7, 7, 128)),
        layers.Conv2DTranspose(128, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2DTranspose(256, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(1, kernel_size=5, padding="same", activation="sigmoid"),
    ],
    name="generator",
)


class GAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        generated_images = self.generator(random_latent_vectors)
        combined_images = ops.concatenate([generated_images, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * tf.random.uniform(tf.shape(labels))
        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        misleading_labels = ops.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


# The measurement: the recipe run's judge and real images, in the recipe's value range [-1, 1].
judge = judge_lib.Judge.load(pathlib.Path(args.judge) / judge_lib.JUDGE_FILE)
images = run_judge.real_images(training.read_config(args.judge))
real = gaussian(judge.predict(images.epoch_reference)[1])
z = np.random.default_rng(judge_lib.SAMPLE_SEED).standard_normal((judge_lib.NUM_SAMPLES, latent_dim)).astype("float32")


def samples(n):
    return 2.0 * generator.predict(z[:n], verbose=0) - 1.0


gan = GAN(discriminator=discriminator, generator=generator, latent_dim=latent_dim)
gan.compile(
    d_optimizer=keras.optimizers.Adam(learning_rate=0.0001),
    g_optimizer=keras.optimizers.Adam(learning_rate=0.0001),
    loss_fn=keras.losses.BinaryCrossentropy(),
)
clock = EpochClock(
    args.log, probe=lambda model: {"val_" + k: v for k, v in sample_quality(judge, samples(500), real).items()}
)
gan.fit(data["x_train"], epochs=args.epochs, batch_size=32, verbose=0, callbacks=[clock])
final = sample_quality(
    judge, samples(judge_lib.NUM_SAMPLES), images.held, labels=images.held_labels, reference=images.reference
)
clock.finish(**final)
