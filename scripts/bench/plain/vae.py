"""The keras-io VAE (examples/generative/vae.py) at the data's size: Conv 32/64 stride 2,
Dense 16, latent 2, a Sampling layer, the transposed-conv decoder; summed binary
cross-entropy plus KL, Adam, batch 128, 30 epochs. Its probe scores the validation split's
negative ELBO (nats per image, one sampled code per image, as `recipes`' val_loss does)."""

import numpy as np
import tensorflow as tf
from _clock import EpochClock, arguments, keras, load
from keras import layers, ops

args = arguments(epochs=30)
data = load(args.data)
height, width, channels = data["x_train"].shape[1:]
latent_dim = 2


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


encoder_inputs = keras.Input(shape=(height, width, channels))
x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
x = layers.Flatten()(x)
x = layers.Dense(16, activation="relu")(x)
z_mean = layers.Dense(latent_dim, name="z_mean")(x)
z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
z = Sampling()([z_mean, z_log_var])
encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

latent_inputs = keras.Input(shape=(latent_dim,))
x = layers.Dense((height // 4) * (width // 4) * 64, activation="relu")(latent_inputs)
x = layers.Reshape((height // 4, width // 4, 64))(x)
x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
decoder_outputs = layers.Conv2DTranspose(channels, 3, activation="sigmoid", padding="same")(x)
decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")


class VAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


def negative_elbo(x, seed=0):
    """Summed binary cross-entropy of a decoded sampled code, plus KL; nats per image.
    (keras' binary_crossentropy averages the channels: summed here over every pixel.)"""
    means = keras.Model(encoder.input, encoder.outputs[:2])  # leaves the Sampling layer's stream alone
    z_mean, z_log_var = (ops.convert_to_numpy(t) for t in means.predict(x, batch_size=512, verbose=0))
    noise = np.random.default_rng(seed).standard_normal(z_mean.shape).astype("float32")
    x_hat = decoder.predict(z_mean + np.exp(0.5 * z_log_var) * noise, batch_size=512, verbose=0)
    x_hat = np.clip(x_hat, 1e-7, 1 - 1e-7)
    bce = -(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat)).reshape(len(x), -1).sum(axis=1)
    kl = -0.5 * np.sum(1 + z_log_var - z_mean**2 - np.exp(z_log_var), axis=1)
    return float(np.mean(bce + kl))


vae = VAE(encoder, decoder)
vae.compile(optimizer=keras.optimizers.Adam())
clock = EpochClock(args.log, probe=lambda model: {"val_negative_elbo": negative_elbo(data["x_val"])})
vae.fit(data["x_train"], epochs=args.epochs, batch_size=128, verbose=0, callbacks=[clock])
clock.finish(negative_elbo=negative_elbo(data["x_test"]))
