"""The baseline the engine is measured against: the TF tutorial's style transfer loop, as written there.

The full VGG19 model with the style and content layers as its outputs, Gram matrices inside the model call,
a Keras Adam and one ``tf.function`` train step per job (so every new job traces again), losses in the
tutorial's form. It takes the engine's own Keras VGG19, so both run the same weights.
"""

import tensorflow as tf

from worker.engine.vgg import STYLE_LAYERS

CONTENT_LAYERS = ("block5_conv2",)  # the seed's, as the TF tutorial has it


def gram_matrix(input_tensor: tf.Tensor) -> tf.Tensor:
    """The tutorial's Gram matrix."""
    result = tf.linalg.einsum("bijc,bijd->bcd", input_tensor, input_tensor)
    input_shape = tf.shape(input_tensor)
    num_locations = tf.cast(input_shape[1] * input_shape[2], tf.float32)
    return result / num_locations


class StyleContentModel(tf.keras.models.Model):
    """The tutorial's extractor: style Grams and content features of a [0,1] image."""

    def __init__(self, vgg: tf.keras.Model) -> None:
        super().__init__()
        outputs = [vgg.get_layer(name).output for name in STYLE_LAYERS + CONTENT_LAYERS]
        self.vgg = tf.keras.Model([vgg.input], outputs)
        self.vgg.trainable = False

    def call(self, inputs):
        """Dicts of style Grams and content features, by layer name."""
        preprocessed_input = tf.keras.applications.vgg19.preprocess_input(inputs * 255.0)
        outputs = self.vgg(preprocessed_input)
        style_outputs = [gram_matrix(output) for output in outputs[: len(STYLE_LAYERS)]]
        content_outputs = outputs[len(STYLE_LAYERS) :]
        return {
            "content": dict(zip(CONTENT_LAYERS, content_outputs, strict=True)),
            "style": dict(zip(STYLE_LAYERS, style_outputs, strict=True)),
        }


class PlainJob:
    """One job of the tutorial loop: its targets, image variable, optimizer and freshly traced step."""

    def __init__(self, model: StyleContentModel, content, style, *, style_weight=1e-2, content_weight=1e4):
        self.model = model
        self.style_targets = model(tf.constant(style[None]))["style"]
        self.content_targets = model(tf.constant(content[None]))["content"]
        self.image = tf.Variable(content[None])
        self.opt = tf.keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)
        self.weights = (style_weight, content_weight, 30.0)
        self.train_step = tf.function(self._train_step)

    def _loss(self, outputs) -> tf.Tensor:
        style_weight, content_weight, _ = self.weights
        style = tf.add_n(
            [tf.reduce_mean((outputs["style"][n] - self.style_targets[n]) ** 2) for n in STYLE_LAYERS]
        )
        content = tf.add_n(
            [tf.reduce_mean((outputs["content"][n] - self.content_targets[n]) ** 2) for n in CONTENT_LAYERS]
        )
        return style * style_weight / len(STYLE_LAYERS) + content * content_weight / len(CONTENT_LAYERS)

    def _train_step(self) -> None:
        with tf.GradientTape() as tape:
            loss = self._loss(self.model(self.image)) + self.weights[2] * tf.image.total_variation(self.image)
        grad = tape.gradient(loss, self.image)
        self.opt.apply_gradients([(grad, self.image)])
        self.image.assign(tf.clip_by_value(self.image, 0.0, 1.0))
