"""The recipes learn visibly, epoch by epoch, side by side with the keras-io examples, on the bundled digits.

    python scripts/bench/learning.py                      # the README's figures (~20 min on 2 CPU cores)
    python scripts/bench/learning.py --quick              # 2 epochs each, 1 of the GANs: does it run
    python scripts/bench/learning.py --epochs 10 --skip-gan
    python scripts/bench/learning.py --gan-epochs 5 --out /tmp/learning

Three comparisons, each run in this one process on the same data splits (the bundled UCI
digits: 1,438 training images, 10% of them held out for validation, 359 test images):

Classifiers, on the digits resized to 32x32 (what `recipes train vgg16` trains on):
- VGG16 default: `recipes.run.train` with `recipes train vgg16`'s configuration
  (preset "small", batch 128, Adam 1e-3, the CPU's automatic precision); read from the
  run's history.csv and metrics.json. Its callbacks include `BatchNormCalibration`.
- VGG16 without calibration: the same model, data and seed (`recipes.run.prepare`),
  trained by a plain `model.fit` with no callbacks: batch norm's moving statistics lag.
- The keras-io MNIST convnet (examples/vision/mnist_convnet.py), written here plainly, in
  float32: Conv 32, pool, Conv 64, pool, Flatten, Dropout 0.5, softmax; batch 128, Adam.

VAEs, on the 8x8 digits as they are, in [0, 1]:
- recipes default: `train` with `recipes train vae`'s configuration (free bits 1.5, batch
  16, Adam 2e-3); the old default: free bits 0, batch 64, Adam 1e-3; the keras-io VAE
  (examples/generative/vae.py, scripts/bench/generative.py's pieces at 8x8: Conv 32/64
  stride 2 to 2x2, Dense 16, latent 2; batch 128, Adam). Each epoch all three are scored
  the same way: negative ELBO on the test split (`generative.negative_elbo`, nats per
  image), KL of the test codes, and the spread of 64 prior samples (mean pairwise L2
  distance, pixels in [0, 1]; the same 64 latent vectors for all). The probe needs a hook
  `train` does not have, so each recipe run is replayed as `train` fits it (`prepare`,
  `fit` with `default_callbacks`) with the probe added, which leaves training's random
  state alone; the replay's val_loss is checked against the run's history.csv.

DCGANs, on the digits resized to 28x28 (what `recipes train dcgan` trains on):
- recipes default: `train` with `recipes train dcgan`'s configuration; it scores 500
  samples each epoch with its judge classifier (history.csv: val_frechet_distance, ...).
- keras-io DCGAN (examples/generative/dcgan_overriding_train_step.py) at 28x28: the
  generator projects to 7x7x128 instead of 8x8x128 and keeps the first two of its three
  stride-2 transposed convolutions (128, 256 filters: 7 -> 14 -> 28; the 512-filter one
  would double to 56), then Conv 1 5x5 sigmoid; the discriminator is unchanged
  (Conv 64/128/128 4x4 stride 2, 28 -> 14 -> 7 -> 4). Latent 128, Adam 1e-4 both, batch
  32, label noise, images in [0, 1]. Each epoch it is scored by the recipe run's
  judge.keras on the same real images and the same number of samples.

Timings are wall-clock on whatever cores this runs on, with neighbours' load included:
on 2 shared cores they vary by 20% or more between runs.
Writes learning.md, learning_curves.png and sample grids to --out.
"""

import argparse
import inspect
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # run from a checkout
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # generative.py's keras-io VAE

import keras  # noqa: E402
import numpy as np  # noqa: E402
from generative import KerasIOSampling, KerasIOVAE, as_array, negative_elbo  # noqa: E402
from keras import ops  # noqa: E402

from recipes import build_vae  # noqa: E402
from recipes import config as config_lib  # noqa: E402
from recipes import judge as judge_lib  # noqa: E402
from recipes._log import forwarded_to  # noqa: E402
from recipes.callbacks import default_callbacks  # noqa: E402
from recipes.hardware import describe_machine  # noqa: E402
from recipes.judge import real_images  # noqa: E402
from recipes.plots import read_history, save_figure, save_image_grid  # noqa: E402
from recipes.quality import gaussian, sample_quality  # noqa: E402
from recipes.run import prepare as prepare_run  # noqa: E402
from recipes.run import train  # noqa: E402

SEED = 0
PRIOR_SAMPLES = 64  # decoded for the spread and the sample grids
GAN_EPOCH_SAMPLES = 500  # as the recipe's SampleQuality scores each epoch


def quiet(*args, **kwargs):
    pass


def prepare(config):
    """`recipes.run.prepare`, quietly: (plan, data, model)."""
    with forwarded_to(quiet):
        run = prepare_run(config)
    return run.plan, run.data, run.model


def run_recipe(model, flags, work, name, sets=None):
    """`recipes train <model>` in a fresh run directory: (config, run_dir, history, metrics, seconds)."""
    config = config_lib.resolve(model, flags=flags, sets=sets)
    run_dir = work / name
    start = time.perf_counter()
    train(config, run_dir, verbose=0, log=quiet)
    seconds = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return config, run_dir, read_history(run_dir / "history.csv"), metrics, seconds


class EpochLog(keras.callbacks.Callback):
    """Keeps each epoch's logs, and what `probe(model)` returns at its end."""

    def __init__(self, probe=None):
        super().__init__()
        self.probe, self.rows = probe, []

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({**(logs or {}), **(self.probe(self.model) if self.probe else {})})

    def column(self, key):
        return [row[key] for row in self.rows]


# ------------------------------------------------------------------- classifiers


def keras_io_convnet(input_shape, num_classes):
    """examples/vision/mnist_convnet.py, with integer labels (sparse cross-entropy, the same loss)."""
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def bench_classifiers(epochs, work):
    sides = {}
    config, run_dir, history, metrics, seconds = run_recipe("vgg16", {"epochs": epochs}, work, "vgg16")
    plan, data, model = prepare(config)  # same seed, weights and data; no callbacks
    last = keras.models.load_model(run_dir / "last.keras")
    sides["VGG16 default (recipes train)"] = dict(
        train=history["accuracy"],
        val=history["val_accuracy"],
        test=last.evaluate(data.test, verbose=0, return_dict=True)["accuracy"],
        best_test=metrics["accuracy"],
        params=last.count_params(),
        seconds=seconds,
    )
    log = EpochLog()
    start = time.perf_counter()
    model.fit(data.train, validation_data=data.val, epochs=epochs, verbose=0, shuffle=False, callbacks=[log])
    sides["VGG16 without calibration"] = dict(
        train=log.column("accuracy"),
        val=log.column("val_accuracy"),
        test=model.evaluate(data.test, verbose=0, return_dict=True)["accuracy"],
        params=model.count_params(),
        seconds=time.perf_counter() - start,
    )

    keras.config.set_dtype_policy("float32")  # as the example runs
    keras.utils.set_random_seed(SEED)
    convnet = keras_io_convnet(data.info.input_shape, data.info.num_classes)
    print(f"keras-io convnet on {data.info.input_shape}: {convnet.count_params():,} parameters", flush=True)
    log = EpochLog()
    start = time.perf_counter()
    convnet.fit(data.train, validation_data=data.val, epochs=epochs, verbose=0, shuffle=False, callbacks=[log])
    sides["keras-io convnet"] = dict(
        train=log.column("accuracy"),
        val=log.column("val_accuracy"),
        test=convnet.evaluate(data.test, verbose=0, return_dict=True)["accuracy"],
        params=convnet.count_params(),
        seconds=time.perf_counter() - start,
    )
    return sides, plan.describe(), data.info


def classifier_tables(sides, epochs, plan):
    names = list(sides)
    short = {"VGG16 default (recipes train)": "VGG16 default", "VGG16 without calibration": "VGG16 no calib."}
    heads = [short.get(n, n) for n in names]
    lines = [
        "| epoch | " + " | ".join(f"{h} train | {h} val" for h in heads) + " |",
        "|---:|" + "---:|---:|" * len(names),
    ]
    for e in range(epochs):
        cells = " | ".join(f"{sides[n]['train'][e]:.3f} | {sides[n]['val'][e]:.3f}" for n in names)
        lines.append(f"| {e + 1} | {cells} |")
    vgg, bare, convnet = (sides[n] for n in names)
    lines += [
        "",
        "| classifier | parameters | test accuracy (last epoch) | first epoch with val >= 0.9 | train time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in names:
        side = sides[name]
        first = next((str(e + 1) for e, v in enumerate(side["val"]) if v >= 0.9), "never")
        lines.append(f"| {name} | {side['params']:,} | {side['test']:.3f} | {first} | {side['seconds']:.0f} |")
    lines += [
        "",
        f"VGG16 default, `metrics.json` (best.keras by val_loss, as `recipes train` reports): test accuracy "
        f"{vgg['best_test']:.3f}. Ratios of test accuracy: VGG16 default / keras-io convnet "
        f"**{vgg['test'] / convnet['test']:.3f}**, VGG16 default / without calibration "
        f"{vgg['test'] / bare['test']:.2f}; mean validation accuracy over the epochs: "
        f"{np.mean(vgg['val']):.3f} / {np.mean(bare['val']):.3f} / {np.mean(convnet['val']):.3f} "
        f"(default / no calibration / convnet). Goal (issue 13): VGG16 default >= the convnet on the same data "
        f"and epochs: **{'met' if vgg['test'] >= convnet['test'] else 'not met'}**.",
        f"VGG16 settings: {plan}; the keras-io convnet runs in float32 with Keras's default `fit()`.",
    ]
    return lines


# --------------------------------------------------------------------------- VAEs


def keras_io_vae_8x8(latent_dim=2):
    """generative.py's keras-io VAE for 8x8x1: the same layers, the decoder projecting to 2x2x64."""
    inputs = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(inputs)
    x = keras.layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(x))
    z_mean = keras.layers.Dense(latent_dim)(x)
    z_log_var = keras.layers.Dense(latent_dim)(x)
    encoder = keras.Model(inputs, [z_mean, z_log_var, KerasIOSampling()([z_mean, z_log_var])])
    latent = keras.Input(shape=(latent_dim,))
    x = keras.layers.Reshape((2, 2, 64))(keras.layers.Dense(2 * 2 * 64, activation="relu")(latent))
    x = keras.layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = keras.layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    outputs = keras.layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    vae = KerasIOVAE(encoder, keras.Model(latent, outputs))
    vae.compile(optimizer=keras.optimizers.Adam())
    return vae


def spread(images):
    """Mean pairwise L2 distance between images (pixels in [0, 1]); ~0 when all are one image."""
    flat = np.asarray(images, dtype="float64").reshape(len(images), -1)
    distances = np.sqrt(np.maximum(((flat[:, None] - flat[None]) ** 2).sum(-1), 0.0))
    return float(distances[np.triu_indices(len(flat), k=1)].mean())


def vae_probe(x_test, z):
    """Scores a VAE's encoder/decoder without calling its sampling layer (training's random state is left alone)."""

    def probe(model):
        means = keras.Model(model.encoder.input, model.encoder.outputs[:2])
        z_mean, z_log_var = (ops.convert_to_numpy(t) for t in means(x_test, training=False))
        kl = float(np.mean(-0.5 * np.sum(1 + z_log_var - z_mean**2 - np.exp(z_log_var), axis=1)))
        codes = lambda x, training=False: (z_mean, z_log_var, z_mean)  # noqa: E731  (x is x_test)
        elbo = negative_elbo(codes, model.decoder, x_test)
        samples = ops.convert_to_numpy(model.decoder(z, training=False))
        return {"neg_elbo": elbo, "kl": kl, "spread": spread(samples), "samples": samples}

    return probe


DEFAULT_FREE_BITS = inspect.signature(build_vae).parameters["free_bits"].default


def bench_vaes(epochs, work, out):
    z = np.random.default_rng(SEED).standard_normal((PRIOR_SAMPLES, 2)).astype("float32")
    sides = {}
    for name, flags, sets in (
        (f"recipes default (free bits {DEFAULT_FREE_BITS:g}, batch 16, lr 2e-3)", {"epochs": epochs}, None),
        ("old default (free bits 0, batch 64, lr 1e-3)", {"epochs": epochs, "batch_size": 64, "learning_rate": 1e-3},
         {"free_bits": 0.0}),
    ):  # fmt: skip
        config, _, history, metrics, seconds = run_recipe("vae", flags, work, f"vae-{len(sides)}", sets=sets)
        _, data, model = prepare(config)  # the replay: train()'s fit and callbacks, and the probe
        x_test = as_array(data.test)
        log = EpochLog(vae_probe(x_test, z))
        callbacks = default_callbacks(
            work / f"vae-{len(sides)}-replay", validation_data=data.val, training_data=data.train, epochs=epochs
        )
        model.fit(
            data.train, validation_data=data.val, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks + [log]
        )
        replay = float(np.max(np.abs(np.subtract(log.column("val_loss"), history["val_loss"]))))
        sides[name] = dict(
            log=log,
            val_loss=history["val_loss"],
            val_kl=history["val_kl_loss"],
            test_elbo=metrics["negative_elbo"],
            batch=config["batch_size"],
            replay=replay,
            seconds=seconds,
        )

    x_train = as_array(data.train)
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(SEED)
    vae = keras_io_vae_8x8()
    log = EpochLog(vae_probe(x_test, z))
    start = time.perf_counter()
    vae.fit(x_train, epochs=epochs, batch_size=128, shuffle=True, verbose=0, callbacks=[log])
    sides["keras-io VAE (batch 128, Adam 1e-3)"] = dict(log=log, batch=128, seconds=time.perf_counter() - start)

    files = {}
    for (name, side), slug in zip(sides.items(), ("recipes", "old_default", "keras_io")):
        files[name] = f"learning_vae_{slug}.png"
        save_image_grid(side["log"].rows[-1]["samples"], out / files[name], value_range=(0.0, 1.0))
    files["real test digits"] = "learning_vae_real.png"
    save_image_grid(x_test[:PRIOR_SAMPLES], out / files["real test digits"], value_range=(0.0, 1.0))
    return sides, spread(x_test[:PRIOR_SAMPLES]), files


def vae_tables(sides, epochs, real_spread, files):
    names = list(sides)
    heads = ["recipes", "old default", "keras-io"]
    lines = [
        "| epoch | " + " | ".join(f"-ELBO {h}" for h in heads) + " | " + " | ".join(f"KL {h}" for h in heads) + " | "
        + " | ".join(f"spread {h}" for h in heads) + " |",
        "|---:|" + "---:|" * 9,
    ]  # fmt: skip
    for e in range(epochs):
        rows = [sides[n]["log"].rows[e] for n in names]
        cells = [f"{r['neg_elbo']:.2f}" for r in rows] + [f"{r['kl']:.3f}" for r in rows]
        lines.append(f"| {e + 1} | " + " | ".join(cells + [f"{r['spread']:.2f}" for r in rows]) + " |")
    lines += [
        "",
        f"Spread of 64 real test digits: {real_spread:.2f}.",
        "",
        "| VAE | batch | test -ELBO (last epoch) | test KL | sample spread | spread / real | "
        "val_loss, val_kl_loss (history.csv) | train time (s) |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name in names:
        side, last = sides[name], sides[name]["log"].rows[-1]
        history = f"{side['val_loss'][-1]:.2f}, {side['val_kl'][-1]:.3f}" if "val_loss" in side else "n/a (no split)"
        lines.append(
            f"| {name} | {side['batch']} | {last['neg_elbo']:.2f} | {last['kl']:.3f} | {last['spread']:.2f} | "
            f"{last['spread'] / real_spread:.2f} | {history} | {side['seconds']:.1f} |"
        )
    ours, old, theirs = (sides[n]["log"].rows[-1] for n in names)
    replay = max(sides[n]["replay"] for n in names[:2])
    lines += [
        "",
        f"Ratios of test -ELBO: recipes / keras-io **{ours['neg_elbo'] / theirs['neg_elbo']:.3f}**, recipes / old "
        f"default {ours['neg_elbo'] / old['neg_elbo']:.3f}; of sample spread: recipes / keras-io "
        f"{ours['spread'] / theirs['spread']:.2f}, recipes / old default "
        f"{ours['spread'] / max(old['spread'], 1e-9):.1f}.",
        f"-ELBO: nats per image on the 359 test digits, 10 codes each; KL: nats, mean over the test digits. "
        f"The recipe columns come from replays of the `recipes train` runs (largest val_loss difference from "
        f"history.csv: {replay:.2g}); train time is the `recipes train` run's, callbacks included.",
        "",
        "Prior samples at the last epoch (the same 64 latent vectors): "
        + ", ".join(f"{n}: `{f}`" for n, f in files.items())
        + ".",
    ]
    return lines


# ------------------------------------------------------------------------ DCGANs


class KerasIOGAN(keras.Model):
    """examples/generative/dcgan_overriding_train_step.py's GAN: generated images are labelled 1, real 0."""

    def __init__(self, discriminator, generator, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.discriminator, self.generator, self.latent_dim = discriminator, generator, latent_dim
        self.seed_generator = keras.random.SeedGenerator(SEED)
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        import tensorflow as tf

        batch_size = ops.shape(real_images)[0]
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        combined = ops.concatenate([self.generator(z), real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * keras.random.uniform(ops.shape(labels), seed=self.seed_generator)  # the example's label noise
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(ops.zeros((batch_size, 1)), self.discriminator(self.generator(z)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


def keras_io_dcgan_28x28(latent_dim=128):
    lrelu = dict(negative_slope=0.2)
    discriminator = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(64, kernel_size=4, strides=2, padding="same"),
            keras.layers.LeakyReLU(**lrelu),
            keras.layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
            keras.layers.LeakyReLU(**lrelu),
            keras.layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
            keras.layers.LeakyReLU(**lrelu),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name="discriminator",
    )
    generator = keras.Sequential(
        [
            keras.Input(shape=(latent_dim,)),
            keras.layers.Dense(7 * 7 * 128),
            keras.layers.Reshape((7, 7, 128)),
            keras.layers.Conv2DTranspose(128, kernel_size=4, strides=2, padding="same"),
            keras.layers.LeakyReLU(**lrelu),
            keras.layers.Conv2DTranspose(256, kernel_size=4, strides=2, padding="same"),
            keras.layers.LeakyReLU(**lrelu),
            keras.layers.Conv2D(1, kernel_size=5, padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
    gan = KerasIOGAN(discriminator, generator, latent_dim)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate=1e-4),
        g_optimizer=keras.optimizers.Adam(learning_rate=1e-4),
        loss_fn=keras.losses.BinaryCrossentropy(),
    )
    return gan


def bench_gans(epochs, work, out):
    config, run_dir, history, metrics, seconds = run_recipe("dcgan", {"epochs": epochs}, work, "dcgan")
    keys = ("frechet_distance", "judge_confidence", "class_entropy")
    sides = {"recipes DCGAN": dict(per_epoch={k: history["val_" + k] for k in keys}, final=metrics, seconds=seconds)}
    recipe = keras.models.load_model(run_dir / "last.keras")
    save_image_grid(recipe.generate(64, seed=judge_lib.SAMPLE_SEED), out / "learning_gan_recipes.png", (-1.0, 1.0))

    judge = judge_lib.Judge.load(run_dir / judge_lib.JUDGE_FILE)
    images = real_images(config)  # in the recipe's [-1, 1]; the same canonical order as its run
    real = gaussian(judge.predict(images.epoch_reference)[1])
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(SEED)
    gan = keras_io_dcgan_28x28()
    z = np.random.default_rng(judge_lib.SAMPLE_SEED).standard_normal((judge_lib.NUM_SAMPLES, gan.latent_dim))

    def generate(model, n):  # in the judge's (the recipe's) value range
        return 2.0 * ops.convert_to_numpy(model.generator.predict(z[:n].astype("float32"), verbose=0)) - 1.0

    log = EpochLog(lambda model: sample_quality(judge, generate(model, GAN_EPOCH_SAMPLES), real))
    start = time.perf_counter()
    gan.fit((images.train + 1.0) / 2.0, epochs=epochs, batch_size=32, shuffle=True, verbose=0, callbacks=[log])
    final = sample_quality(
        judge, generate(gan, judge_lib.NUM_SAMPLES), images.held, labels=images.held_labels, reference=images.reference
    )
    sides["keras-io DCGAN"] = dict(
        per_epoch={k: log.column(k) for k in keys}, final=final, seconds=time.perf_counter() - start
    )
    save_image_grid(generate(gan, 64), out / "learning_gan_keras_io.png", (-1.0, 1.0))
    return sides, images


def gan_tables(sides, epochs):
    names = list(sides)
    lines = [
        "| epoch | " + " | ".join(f"FD {n} | conf. {n} | entropy {n}" for n in names) + " |",
        "|---:|" + "---:|---:|---:|" * len(names),
    ]
    for e in range(epochs):
        cells = []
        for n in names:
            per_epoch = sides[n]["per_epoch"]
            cells += [
                f"{per_epoch['frechet_distance'][e]:.2f}",
                f"{per_epoch['judge_confidence'][e]:.3f}",
                f"{per_epoch['class_entropy'][e]:.3f}",
            ]
        lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    ours, theirs = (sides[n]["final"] for n in names)
    lines += [
        "",
        "| DCGAN, 1,000 samples at the last epoch, test digits | Fréchet distance | judge confidence | "
        "class entropy | train time (s) |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {n} | {sides[n]['final']['frechet_distance']:.2f} | {sides[n]['final']['judge_confidence']:.3f} | "
            f"{sides[n]['final']['class_entropy']:.3f} | {sides[n]['seconds']:.0f} |"
            for n in names
        ),
        "",
        f"Ratio of Fréchet distance recipes / keras-io: "
        f"**{ours['frechet_distance'] / theirs['frechet_distance']:.2f}** "
        f"(lower is better). The floor (1,000 real training digits against the test digits): "
        f"{ours['frechet_distance_real']:.2f}; the judge's accuracy on the test digits: {ours['judge_accuracy']:.3f}. "
        f"Per epoch: 500 samples from fixed latent vectors against the recipe's epoch reference (1,000 real "
        f"training digits); entropy of the predicted classes, log 10 = 2.303 when all are made equally often. "
        f"The recipe's time includes its callbacks (judge training, scoring, checkpoints); keras-io's includes "
        f"its per-epoch scoring.",
        "Samples at the last epoch: `learning_gan_recipes.png`, `learning_gan_keras_io.png`.",
    ]
    return lines


# ----------------------------------------------------------------------- output


def draw_curves(classifiers, vaes, gans, path):
    from matplotlib.figure import Figure

    panels = 2 + (gans is not None)
    fig = Figure(figsize=(5 * panels, 4), dpi=100)
    ax = fig.add_subplot(1, panels, 1)
    for (name, side), color in zip(classifiers.items(), ("C0", "C3", "C2")):
        epochs = range(1, len(side["val"]) + 1)
        ax.plot(epochs, side["val"], "-o", color=color, markersize=3, label=f"{name} val")
        ax.plot(epochs, side["train"], "--", color=color, alpha=0.5, label=f"{name} train")
    ax.set(title="Classifiers, digits 32x32", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    ax.legend(fontsize=7, loc="lower right")
    ax = fig.add_subplot(1, panels, 2)
    for name, side in vaes.items():
        values = side["log"].column("neg_elbo")
        ax.plot(range(1, len(values) + 1), values, "-o", markersize=3, label=name)
    ax.set(title="VAEs, digits 8x8", xlabel="epoch", ylabel="test -ELBO (nats/image)")
    ax.legend(fontsize=7)
    if gans is not None:
        ax = fig.add_subplot(1, panels, 3)
        for name, side in gans.items():
            values = side["per_epoch"]["frechet_distance"]
            ax.plot(range(1, len(values) + 1), values, "-o", markersize=3, label=name)
        ax.set(title="DCGANs, digits 28x28, one judge", xlabel="epoch", ylabel="Fréchet distance (judge features)")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="classifiers and VAEs (the keras-io convnet's 15)")
    parser.add_argument("--gan-epochs", type=int, default=10, help="both DCGANs (~25 s an epoch each on 2 cores)")
    parser.add_argument("--skip-gan", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 GAN epoch: a check that it runs")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("scripts/bench/results"))
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.gan_epochs = 2, 1
    args.out.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="learning-"))
    load = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        classifiers, plan, info = bench_classifiers(args.epochs, work)
        print(f"classifiers done, {time.perf_counter() - start:.0f}s", flush=True)
        vaes, real_spread, vae_files = bench_vaes(args.epochs, work, args.out)
        print(f"VAEs done, {time.perf_counter() - start:.0f}s", flush=True)
        gans = None if args.skip_gan else bench_gans(args.gan_epochs, work, args.out)[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    draw_curves(classifiers, vaes, gans, args.out / "learning_curves.png")

    lines = [
        f"Learning on the bundled digits, epoch by epoch, recipes beside the keras-io examples. {describe_machine()}; "
        f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after; {time.perf_counter() - start:.0f}s. "
        f"Timings are single runs on shared cores: they vary by 20% or more.",
        "",
        f"### Classifiers: {args.epochs} epochs, digits 32x32 ({info.num_train:,} train / {info.num_val} validation "
        f"/ {info.num_test} test)",
        "",
        *classifier_tables(classifiers, args.epochs, plan),
        "",
        f"### VAEs: {args.epochs} epochs, digits 8x8",
        "",
        *vae_tables(vaes, args.epochs, real_spread, vae_files),
    ]
    if gans is not None:
        lines += ["", f"### DCGANs: {args.gan_epochs} epochs, digits 28x28, scored by the recipe run's judge", ""]
        lines += gan_tables(gans, args.gan_epochs)
    lines += ["", "Curves: `learning_curves.png`."]
    table = "\n".join(lines)
    (args.out / "learning.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
