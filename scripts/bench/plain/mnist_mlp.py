"""The Keras MNIST MLP (keras-team/keras examples/mnist_mlp.py): 2 x Dense 512 with dropout
0.2, RMSprop, batch 128, 20 epochs, one-hot labels; validated on the bench's split."""

from _clock import EpochClock, arguments, keras, load

args = arguments(epochs=20)
data = load(args.data)
batch_size = 128
num_classes = int(data["y_train"].max()) + 1

x_train, x_val, x_test = (data[k].reshape(len(data[k]), -1).astype("float32") for k in ("x_train", "x_val", "x_test"))
y_train, y_val, y_test = (keras.utils.to_categorical(data[k], num_classes) for k in ("y_train", "y_val", "y_test"))

model = keras.Sequential(
    [
        keras.Input(shape=x_train.shape[1:]),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]
)
model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(), metrics=["accuracy"])
clock = EpochClock(args.log)
model.fit(
    x_train,
    y_train,
    batch_size=batch_size,
    epochs=args.epochs,
    verbose=0,
    validation_data=(x_val, y_val),
    callbacks=[clock],
)
score = model.evaluate(x_test, y_test, verbose=0)
clock.finish(loss=score[0], accuracy=score[1])
