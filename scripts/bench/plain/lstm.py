"""One LSTM over the image rows: the Keras IMDB LSTM example's recurrent layer
(keras-team/keras examples/imdb_lstm.py: LSTM(128), Adam) with the rows as its input
(no embedding: rows are real-valued) and a softmax over the classes; batch 128, 15 epochs."""

from _clock import EpochClock, arguments, keras, load

args = arguments(epochs=15)
data = load(args.data)
batch_size = 128
num_classes = int(data["y_train"].max()) + 1

model = keras.Sequential(
    [
        keras.Input(shape=data["x_train"].shape[1:]),
        keras.layers.LSTM(128),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]
)
model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
clock = EpochClock(args.log)
model.fit(
    data["x_train"], data["y_train"], batch_size=batch_size, epochs=args.epochs, verbose=0,
    validation_data=(data["x_val"], data["y_val"]), callbacks=[clock],
)  # fmt: skip
score = model.evaluate(data["x_test"], data["y_test"], verbose=0)
clock.finish(loss=score[0], accuracy=score[1])
