"""AlexNet as plain Keras tutorials write it: the images resized to 227x227, then the
paper's layers (Conv 96 11x11/4, pool 3/2, Conv 256 5x5, pool, Conv 384, 384, 256 3x3,
pool, Dense 4096, 4096 with dropout 0.5) without LRN, which Keras does not have; the
paper's SGD (learning rate 0.01, momentum 0.9), batch 128."""

from _clock import EpochClock, arguments, keras, load

args = arguments(epochs=15)
data = load(args.data)
num_classes = int(data["y_train"].max()) + 1

model = keras.Sequential(
    [
        keras.Input(shape=data["x_train"].shape[1:]),
        keras.layers.Resizing(227, 227),
        keras.layers.Conv2D(96, 11, strides=4, activation="relu"),
        keras.layers.MaxPooling2D(3, strides=2),
        keras.layers.Conv2D(256, 5, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(3, strides=2),
        keras.layers.Conv2D(384, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(384, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(256, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(3, strides=2),
        keras.layers.Flatten(),
        keras.layers.Dense(4096, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(4096, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]
)
model.compile(
    loss="sparse_categorical_crossentropy",
    optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
    metrics=["accuracy"],
)
clock = EpochClock(args.log)
model.fit(
    data["x_train"], data["y_train"], batch_size=128, epochs=args.epochs, verbose=0,
    validation_data=(data["x_val"], data["y_val"]), callbacks=[clock],
)  # fmt: skip
score = model.evaluate(data["x_test"], data["y_test"], verbose=0)
clock.finish(loss=score[0], accuracy=score[1])
