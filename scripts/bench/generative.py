"""Evidence that the generative recipes learn, on the bundled digits, with nothing downloaded.

    python scripts/bench/generative.py                  # the README's figures (~10 min on 2 CPU cores)
    python scripts/bench/generative.py --epochs 5       # a quick look
    python scripts/bench/generative.py --out /tmp/gen   # where the table and sample grids go

VAE: `build_vae` with the configuration `recipes train vae` uses, and the keras-io example
VAE (examples/generative/vae.py: Conv 32/64 stride 2, Dense 16, latent 2, Adam, batch 128),
written here plainly, train in this run on the same images (the digits' 1,438 training
images resized to 28x28, values in [0, 1]) for the same number of epochs. Both are scored
by the same function: the negative ELBO in nats per image on the 359 held-out images,
averaged over 10 draws of the code.

DCGAN: `build_dcgan` trains on the same images in [-1, 1]. A classifier recipe (the MLP,
trained on the real 28x28 training digits) labels 1,000 generated samples; we report its
accuracy on the held-out real digits, its mean top-class confidence on the samples, and the
entropy of the histogram of predicted classes (log 10 = 2.303 nats when every class is
generated equally often; far lower means mode collapse).

Writes `generative.md` (the table) and PNG sample grids to --out.
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # run from a checkout

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from recipes import build_dcgan, build_mlp, build_vae  # noqa: E402
from recipes.datasets import load_dataset  # noqa: E402
from recipes.hardware import describe_machine  # noqa: E402
from recipes.plots import save_image_grid  # noqa: E402
from recipes.registry import get_spec  # noqa: E402

# ------------------------------------------------------------- the keras-io VAE


class KerasIOSampling(keras.layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean))
        return z_mean + ops.exp(0.5 * z_log_var) * eps


class KerasIOVAE(keras.Model):
    """The keras-io example: loss = sum of pixel BCE + KL, both averaged over the batch."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.tracker]

    def train_step(self, data):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            x_hat = self.decoder(z)
            rec = ops.mean(ops.sum(keras.losses.binary_crossentropy(data, x_hat), axis=(1, 2)))
            kl = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            loss = rec + ops.mean(ops.sum(kl, axis=1))
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.tracker.update_state(loss)
        return {"loss": self.tracker.result()}


def keras_io_vae(latent_dim=2):
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(inputs)
    x = keras.layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(x))
    z_mean = keras.layers.Dense(latent_dim)(x)
    z_log_var = keras.layers.Dense(latent_dim)(x)
    encoder = keras.Model(inputs, [z_mean, z_log_var, KerasIOSampling()([z_mean, z_log_var])])
    latent = keras.Input(shape=(latent_dim,))
    x = keras.layers.Reshape((7, 7, 64))(keras.layers.Dense(7 * 7 * 64, activation="relu")(latent))
    x = keras.layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = keras.layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    outputs = keras.layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    vae = KerasIOVAE(encoder, keras.Model(latent, outputs))
    vae.compile(optimizer=keras.optimizers.Adam())
    return vae


# ------------------------------------------------------------------ measurement


def negative_elbo(encoder, decoder, x, draws=10, seed=0):
    """Mean over images of (summed BCE + KL) in nats, averaged over `draws` codes per image."""
    z_mean, z_log_var, _ = (ops.convert_to_numpy(t) for t in encoder(x, training=False))
    kl = -0.5 * np.sum(1 + z_log_var - z_mean**2 - np.exp(z_log_var), axis=1)
    rng = np.random.default_rng(seed)
    rec = []
    for _ in range(draws):
        z = z_mean + np.exp(0.5 * z_log_var) * rng.standard_normal(z_mean.shape).astype("float32")
        x_hat = np.clip(ops.convert_to_numpy(decoder(z, training=False)), 1e-7, 1 - 1e-7)
        bce = -(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat))
        rec.append(bce.reshape(len(x), -1).sum(axis=1))
    return float(np.mean(np.mean(rec, axis=0) + kl))


def as_array(dataset):
    return np.concatenate([np.asarray(b[0] if isinstance(b, tuple) else b) for b in dataset])


def digits(value_range, labels):
    train, _, test, info = load_dataset(
        "digits",
        image_size=(28, 28),
        value_range=value_range,
        labels=labels,
        validation_split=0.0,
        return_test=True,
        batch_size=256,
        seed=0,
    )
    return train, test, info


def bench_vae(epochs, out):
    keras.utils.set_random_seed(0)
    x_train = as_array(digits((0.0, 1.0), labels=False)[0])
    x_test = as_array(digits((0.0, 1.0), labels=False)[1])
    batch = get_spec("vae").defaults["batch_size"]
    rows = []
    for name, model, batch_size in (
        ("recipes build_vae", build_vae(input_shape=(28, 28, 1), seed=0), batch),
        ("keras-io VAE", keras_io_vae(), 128),
    ):
        start = time.perf_counter()
        model.fit(x_train, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True)
        seconds = time.perf_counter() - start
        rows.append((name, batch_size, negative_elbo(model.encoder, model.decoder, x_test), seconds))
        if name.startswith("recipes"):
            save_image_grid(model.sample(64, seed=0), out / "vae_samples.png", value_range=(0.0, 1.0))
    return rows


def bench_dcgan(epochs, out):
    keras.utils.set_random_seed(0)
    train, test, _ = digits((0.0, 1.0), labels=True)
    classifier = build_mlp(input_shape=(28, 28, 1), num_classes=10)
    classifier.fit(train, epochs=30, verbose=0)
    accuracy = classifier.evaluate(test, verbose=0, return_dict=True)["accuracy"]

    images = as_array(digits((-1.0, 1.0), labels=False)[0])
    gan = build_dcgan(input_shape=(28, 28, 1), seed=0)
    start = time.perf_counter()
    gan.fit(images, epochs=epochs, batch_size=get_spec("dcgan").defaults["batch_size"], verbose=0)
    seconds = time.perf_counter() - start
    samples = gan.generate(1000, seed=0)
    save_image_grid(samples[:64], out / "dcgan_samples.png", value_range=gan.value_range)
    probs = classifier.predict((samples + 1.0) / 2.0, verbose=0)  # the classifier reads [0, 1]
    counts = np.bincount(probs.argmax(axis=1), minlength=10) / len(probs)
    entropy = -np.sum(counts[counts > 0] * np.log(counts[counts > 0]))
    return accuracy, float(probs.max(axis=1).mean()), float(entropy), counts, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("scripts/bench/results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    vae_rows = bench_vae(args.epochs, args.out)
    acc, confidence, entropy, counts, gan_seconds = bench_dcgan(args.epochs, args.out)
    ours, theirs = vae_rows[0][2], vae_rows[1][2]
    lines = [
        f"Bundled digits resized to 28x28, {args.epochs} epochs each. {describe_machine()}.",
        "",
        "| VAE | batch | held-out negative ELBO (nats/image) | train time (s) |",
        "|---|---:|---:|---:|",
        *(f"| {n} | {b} | {e:.1f} | {s:.0f} |" for n, b, e, s in vae_rows),
        f"| ratio recipes / keras-io | | {ours / theirs:.3f} | |",
        "",
        "| DCGAN sample-quality proxy | value |",
        "|---|---:|",
        f"| judge (MLP recipe) accuracy on held-out real digits | {acc:.3f} |",
        f"| mean top-class confidence on 1,000 samples | {confidence:.3f} |",
        f"| entropy of predicted-class histogram (max log 10 = 2.303) | {entropy:.3f} |",
        f"| share of samples per class 0..9 | {' '.join(f'{c:.2f}' for c in counts)} |",
        f"| train time (s) | {gan_seconds:.0f} |",
    ]
    table = "\n".join(lines)
    (args.out / "generative.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
