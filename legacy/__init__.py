"""legacy: the TF1 half — ``tf.compat.v1`` graph mode and tf_slim (twin: ``modern/``).

Models, training and evaluation arrive with the ResNet and training issues; the input pipeline both halves
share is ``flowio.reader.graph_input``.
"""
