"""Text classification: the LSTM recipe's text default against the keras-io BiLSTM and TF-IDF + LR.

    python scripts/bench/text.py                                     # both corpora, all three (~25 min, 2 cores)
    python scripts/bench/text.py --corpora fortunes --only tfidf-lr keras-io
    python scripts/bench/text.py --corpora debian --only recipe --keras-io-epochs 5
    python scripts/bench/text.py --report                            # redraw from --work/results.json

Corpora (`_corpora.py`, made once into --work/corpora, the same from the seed every time):
real texts a Debian machine already holds, 8 classes each, an 80/20 stratified split,
CSV files with `text,label` columns:
- `fortunes`: the 8 largest categories of Debian's fortune cookies (people, definitions,
  cookie, computers, politics, miscellaneous, songs-poems, work; 5,498 train, 1,373 test,
  median 17 words);
- `debian`: package synopses by archive section (admin, devel, games, net, science, sound,
  text, utils; 8,266 train, 2,068 test, median 6 words).

Three contenders per corpus, each a fresh process, one after the other, timed from the
moment the bench starts it (imports, reading, vectorising, tracing and training count, as a
user waits for them) to its test accuracy:
- `recipe`: `python -m recipes.cli train lstm --dataset <corpus folder> --run-dir D --seed S`,
  the command a user types, with the recipe's default; the test accuracy from D/metrics.json,
  the mean of --recipe-seeds runs (0 1 2: a seed draws the validation split, the first weights
  and the order; one run moves by about 0.01 on these test sets). Its time is the whole run.
- `keras-io`: the BiLSTM as keras.io's `nlp/bidirectional_lstm_imdb` and
  `nlp/text_classification_from_scratch` write it: TextVectorization(max_tokens=20000,
  output_sequence_length=200) adapted on the training texts, Embedding(20000, 128), two
  Bidirectional(LSTM(64)), a softmax head, adam 1e-3, batch 32, the last 10% of the training
  file for validation, --keras-io-epochs (10) epochs; the best validation epoch's weights
  give its test accuracy, and its time to that accuracy is the end of that epoch (its
  whole run, every epoch and the test, is reported too).
- `tfidf-lr`: scikit-learn, TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2),
  min_df=2) and LogisticRegression(C=10) on the whole training file (a fixed C, no search).

The table gives each contender's test accuracy, its wall time to it, and the ratios
against the recipe (above 1: the recipe is sooner). Results are kept per corpus and
contender in --work/results.json, so a rerun of some redraws the table with the others.
Writes text.md and text.json to --out (docs/benchmarks/ of the checkout).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]  # the checkout whose package is measured
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

CONTENDERS = ("recipe", "keras-io", "tfidf-lr")
CORPORA = ("fortunes", "debian")
OUT = ROOT / "docs" / "benchmarks"


def env():
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def log_line(log, **row):
    with open(log, "a") as f:
        f.write(json.dumps({"time": time.time(), **row}) + "\n")


# ---- the contenders' own processes -------------------------------------------------------


def worker_tfidf_lr(corpus, log, _epochs):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    x_train, y_train = read_csv(corpus / "train.csv")
    x_test, y_test = read_csv(corpus / "test.csv")
    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)
    model = LogisticRegression(C=10.0, max_iter=2000)
    model.fit(vectorizer.fit_transform(x_train), y_train)
    accuracy = float((model.predict(vectorizer.transform(x_test)) == __import__("numpy").array(y_test)).mean())
    log_line(log, final={"test_accuracy": accuracy})


def worker_keras_io(corpus, log, epochs):
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    x_train, y_train = read_csv(corpus / "train.csv")
    x_test, y_test = read_csv(corpus / "test.csv")
    labels = sorted(set(y_train))
    index = {label: i for i, label in enumerate(labels)}
    y_train = np.array([index[y] for y in y_train])
    y_test = np.array([index[y] for y in y_test])
    n_val = len(x_train) // 10
    x_val, y_val = x_train[-n_val:], y_train[-n_val:]
    x_fit, y_fit = x_train[:-n_val], y_train[:-n_val]

    max_features, sequence_length = 20000, 200
    vectorize = keras.layers.TextVectorization(max_tokens=max_features, output_sequence_length=sequence_length)
    vectorize.adapt(tf.constant(x_fit))
    x_fit, x_val, x_test = (vectorize(tf.constant(x)).numpy() for x in (x_fit, x_val, x_test))

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(max_features, 128)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True))(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(64))(x)
    outputs = keras.layers.Dense(len(labels), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])

    best = {"val": -1.0, "weights": None}

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            now = time.time()  # the epoch's end; what follows is the bench's own bookkeeping
            val = float(logs["val_accuracy"])
            if val > best["val"]:
                best.update(val=val, weights=self.model.get_weights(), epoch=epoch + 1, time=now)
            log_line(log, epoch=epoch + 1, val_accuracy=val, end=now)

    model.fit(
        x_fit, y_fit, batch_size=32, epochs=epochs, validation_data=(x_val, y_val), callbacks=[Clock()], verbose=2
    )
    model.set_weights(best["weights"])
    accuracy = float(model.evaluate(x_test, y_test, batch_size=256, verbose=0)[1])
    log_line(log, final={"test_accuracy": accuracy, "best_epoch": best["epoch"], "best_epoch_end": best["time"]})


WORKERS = {"keras-io": worker_keras_io, "tfidf-lr": worker_tfidf_lr}


# ---- the bench ------------------------------------------------------------------------------


def timed(command, limit):
    """Runs `command`; returns (start wall time, seconds until exit, exit code, stderr)."""
    start = time.time()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return start, time.time() - start, "timeout", ""
    return start, time.time() - start, done.returncode, done.stderr


def test_accuracy_of(metrics):
    """The test accuracy in a run's metrics.json: flat (`test_accuracy`, `accuracy`) or nested
    (`{"test": {"accuracy": ..}}`)."""
    for key in ("test_accuracy", "accuracy", "test/accuracy"):
        if isinstance(metrics.get(key), (int, float)):
            return float(metrics[key])
    for key in ("test", "metrics", "final"):
        if isinstance(metrics.get(key), dict):
            found = test_accuracy_of(metrics[key])
            if found is not None:
                return found
    return None


def run_recipe_seeds(corpus_dir, work_dir, seeds, limit=3600):
    """`run_recipe` once per seed (a seed draws the validation split, the initial weights and the
    order): the mean accuracy and time, and each run."""
    runs = []
    for seed in seeds:
        result = run_recipe(corpus_dir, pathlib.Path(work_dir) / f"seed{seed}", limit, seed=seed)
        if "failed" in result:
            return result
        runs.append({"seed": seed, **result})
    mean = {key: sum(r[key] for r in runs) / len(runs) for key in ("accuracy", "seconds", "to_accuracy")}
    return {**mean, "runs": runs}


def run_recipe(corpus_dir, work_dir, limit=3600, seed=0):
    """`recipes train lstm` on the corpus folder, its default configuration; None on failure."""
    run_dir = pathlib.Path(work_dir) / "run"
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    command = [sys.executable, "-m", "recipes.cli", "train", "lstm", "--dataset", str(corpus_dir)]
    command += ["--run-dir", str(run_dir), "--seed", str(seed)]
    start, seconds, code, err = timed(command, limit)
    metrics_path = run_dir / "metrics.json"
    if code != 0 or not metrics_path.exists():
        return {"failed": f"exit {code}: {' '.join(err.strip().splitlines()[-1:])[:300]}", "seconds": seconds}
    accuracy = test_accuracy_of(json.loads(metrics_path.read_text()))
    if accuracy is None:
        return {"failed": f"no test accuracy in {metrics_path}", "seconds": seconds}
    return {"accuracy": accuracy, "seconds": seconds, "to_accuracy": seconds}


def run_worker(name, corpus_dir, work_dir, epochs, limit=3600):
    log = pathlib.Path(work_dir) / f"{name}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--worker", name, "--corpus", str(corpus_dir), "--log", str(log)]
    command += ["--keras-io-epochs", str(epochs)]
    start, seconds, code, err = timed(command, limit)
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    if code != 0 or not rows or "final" not in rows[-1]:
        return {"failed": f"exit {code}: {' '.join(err.strip().splitlines()[-1:])[:300]}", "seconds": seconds}
    final = rows[-1]["final"]
    result = {"accuracy": final["test_accuracy"], "seconds": rows[-1]["time"] - start}
    result["to_accuracy"] = final["best_epoch_end"] - start if "best_epoch_end" in final else result["seconds"]
    curve = [(r["end"] - start, r["val_accuracy"]) for r in rows if "epoch" in r]
    if curve:
        result.update(curve=curve, best_epoch=final["best_epoch"], epochs=len(curve))
    return result


def report(results, out):
    lines = [
        "| corpus | contender | test accuracy | time to it | whole run | recipe sooner by (to it) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for corpus in CORPORA:
        got = results.get(corpus, {})
        ours = got.get("recipe", {})
        for name in CONTENDERS:
            r = got.get(name)
            if r is None:
                continue
            if "failed" in r:
                lines.append(f"| {corpus} | `{name}` | failed | | {r['seconds']:.0f} s | |")
                continue
            note = f" (best of {r['epochs']} epochs: {r['best_epoch']})" if "epochs" in r else ""
            if "runs" in r:
                accuracies = [run["accuracy"] for run in r["runs"]]
                note = f" (mean of {len(accuracies)} seeds: {', '.join(f'{a:.3f}' for a in accuracies)})"
            ratio = ""
            if name != "recipe" and "accuracy" in ours:
                ratio = f"{r['to_accuracy'] / ours['to_accuracy']:.2f}x"
                ratio += "" if ours["accuracy"] >= r["accuracy"] else " (recipe less accurate)"
            lines.append(
                f"| {corpus} | `{name}`{note} | {r['accuracy']:.3f} | {r['to_accuracy']:.1f} s | "
                f"{r['seconds']:.1f} s | {ratio} |"
            )
    try:
        from recipes.hardware import describe_machine

        machine = describe_machine()
    except Exception:  # the table is still worth writing
        machine = f"{os.cpu_count()} CPU cores"
    lines += ["", f"Each contender a fresh process, timed from its start to its test accuracy; {machine}."]
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "text.md").write_text(text)
    (out / "text.json").write_text(json.dumps(results, indent=1) + "\n")
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", nargs="+", choices=CORPORA, default=list(CORPORA))
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--keras-io-epochs", type=int, default=10)
    parser.add_argument("--recipe-seeds", type=int, nargs="+", default=[0, 1, 2], help="the recipe's runs, averaged")
    parser.add_argument("--seed", type=int, default=0, help="of the corpora's splits")
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/textbench"))
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "results")
    parser.add_argument("--limit", type=int, default=3600, help="seconds a contender may run")
    parser.add_argument("--report", action="store_true", help="only redraw from --work/results.json")
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return WORKERS[args.worker](args.corpus, args.log, args.keras_io_epochs)

    import _corpora

    kept = args.work / "results.json"
    results = json.loads(kept.read_text()) if kept.exists() else {}
    if not args.report:
        for corpus in args.corpora:
            folder = args.work / "corpora" / corpus
            if not (folder / "test.csv").exists():
                _corpora.CORPORA[corpus](folder, seed=args.seed)
            for name in args.only:
                work = args.work / corpus / name
                work.mkdir(parents=True, exist_ok=True)
                if name == "recipe":
                    result = run_recipe_seeds(folder, work, args.recipe_seeds, args.limit)
                else:
                    result = run_worker(name, folder, work, args.keras_io_epochs, args.limit)
                results.setdefault(corpus, {})[name] = result
                kept.write_text(json.dumps(results, indent=1) + "\n")
                shown = result.get("failed") or f"{result['accuracy']:.3f} in {result['to_accuracy']:.1f} s"
                print(f"{corpus} {name}: {shown}", flush=True)
    print(report(results, args.out))


if __name__ == "__main__":
    main()
