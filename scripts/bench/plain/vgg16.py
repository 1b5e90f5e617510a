"""VGG16 as Keras gives it: `keras.applications.VGG16(weights=None, classes=...)` at the
data's size, compiled the keras-io way (Adam, cross-entropy, accuracy) and fit with batch 128."""

from _clock import EpochClock, arguments, keras, load

args = arguments(epochs=15)
data = load(args.data)
num_classes = int(data["y_train"].max()) + 1

model = keras.applications.VGG16(weights=None, input_shape=data["x_train"].shape[1:], classes=num_classes)
model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
clock = EpochClock(args.log)
model.fit(
    data["x_train"], data["y_train"], batch_size=128, epochs=args.epochs, verbose=0,
    validation_data=(data["x_val"], data["y_val"]), callbacks=[clock],
)  # fmt: skip
score = model.evaluate(data["x_test"], data["y_test"], verbose=0)
clock.finish(loss=score[0], accuracy=score[1])
