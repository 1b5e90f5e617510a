"""VGG16 as Keras gives it: `keras.applications.VGG16(weights=None, classes=...)` at the
data's size, compiled with Adam, cross-entropy and accuracy, fit with batch 128.

Adam at 1e-4, the rate from-scratch VGG16 tutorials use: at Keras's default 1e-3 this
model (no batch norm) stayed at chance on the bench's digits (validation accuracy
0.07-0.11 for 6 epochs), so the race had no target; at 1e-4 it validated at 0.84 after 8."""

from _clock import EpochClock, arguments, keras, load

args = arguments(epochs=15)
data = load(args.data)
num_classes = int(data["y_train"].max()) + 1

model = keras.applications.VGG16(weights=None, input_shape=data["x_train"].shape[1:], classes=num_classes)
model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-4), metrics=["accuracy"])
clock = EpochClock(args.log)
model.fit(
    data["x_train"], data["y_train"], batch_size=128, epochs=args.epochs, verbose=0,
    validation_data=(data["x_val"], data["y_val"]), callbacks=[clock],
)  # fmt: skip
score = model.evaluate(data["x_test"], data["y_test"], verbose=0)
clock.finish(loss=score[0], accuracy=score[1])
