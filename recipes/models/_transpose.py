"""`Conv2DTranspose` whose kernel gradient XLA computes fast on a CPU (the VAE's decoder, the DCGAN's generator)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="recipes")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` with the same weights, outputs and gradients, whose kernel
    gradient on JAX is taken through the strided convolution that the layer transposes.

    JAX differentiates a transposed convolution as a convolution of the input dilated by the
    strides, and XLA's CPU kernel for that is slow: forward and backward of the DCGAN's
    5x5/2 layer (7x7x256 -> 14x14x128, batch 64) took 8.8 s against 0.76 s this way, the VAE's
    3x3/2 layers 85 and 257 ms against 12 and 19 ms (2 cores; scripts/bench/jax_cpu.py). Other
    backends run Keras's own layer.
    """

    def call(self, inputs):
        if keras.backend.backend() != "jax":
            return super().call(inputs)
        outputs = _conv_transpose(
            inputs,
            ops.convert_to_tensor(self.kernel),  # its value: custom_vjp takes arrays
            strides=list(self.strides),
            padding=self.padding,
            output_padding=self.output_padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        if self.use_bias:
            last = self.data_format == "channels_last"
            shape = (1,) * (self.rank + 1) + (self.filters,) if last else (1, self.filters) + (1,) * self.rank
            outputs = ops.add(outputs, ops.reshape(self.bias, shape))
        return outputs if self.activation is None else self.activation(outputs)


def _conv_transpose(x, kernel, **options):
    """`ops.conv_transpose(x, kernel, **options)` on JAX, with its gradients by the strided convolution."""
    import jax

    def forward(x, kernel):
        return ops.conv_transpose(x, kernel, **options)

    @jax.custom_vjp
    def conv_transpose(x, kernel):
        return forward(x, kernel)

    def save(x, kernel):
        return forward(x, kernel), (x, kernel)

    def gradients(saved, dy):
        x, kernel = saved

        def strided(k):  # the convolution `forward` transposes, applied to dy: the input gradient
            return jax.linear_transpose(lambda x: forward(x, k), x)(dy)[0]

        # <dy, forward(x, k)> = <strided(k), x>, so the kernel gradient is that of a strided convolution
        dx, pullback = jax.vjp(strided, kernel)
        return dx, pullback(x)[0]

    conv_transpose.defvjp(save, gradients)
    return conv_transpose(x, kernel)
