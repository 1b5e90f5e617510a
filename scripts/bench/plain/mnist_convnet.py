"""The keras-io simple MNIST convnet (examples/vision/mnist_convnet.py): Conv 32, pool,
Conv 64, pool, Flatten, Dropout 0.5, softmax; Adam, batch 128, 15 epochs, one-hot labels;
validated on the bench's split (the example holds out 10% of training, as the bench does)."""

from _clock import EpochClock, arguments, keras, load

args = arguments(epochs=15)
data = load(args.data)
batch_size = 128
num_classes = int(data["y_train"].max()) + 1
y_train, y_val, y_test = (keras.utils.to_categorical(data[k], num_classes) for k in ("y_train", "y_val", "y_test"))

model = keras.Sequential(
    [
        keras.Input(shape=data["x_train"].shape[1:]),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]
)
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
clock = EpochClock(args.log)
model.fit(
    data["x_train"], y_train, batch_size=batch_size, epochs=args.epochs, verbose=0,
    validation_data=(data["x_val"], y_val), callbacks=[clock],
)  # fmt: skip
score = model.evaluate(data["x_test"], y_test, verbose=0)
clock.finish(loss=score[0], accuracy=score[1])
