"""The TF1 side of a port check: the porter's slim model function built in a graph, given values that expose
mistakes, written as a TF1 checkpoint, its end points in the graph's order with what each depends on, and one
training step of TF1's own optimizer in a Session.

Nothing here knows the Keras port: ``portcheck/keras.py`` reads the checkpoint written here by name.
"""

import numpy as np

from core import checkpoints
from core.errors import UserError
from legacy import optimizers
from legacy.slim_compat import slim, tf

# the op types whose second input is the kernel a head's walk back from the logits stops at
KERNEL_OPS = ("Conv2D", "MatMul", "DepthwiseConv2dNative")
VARIABLE_OPS = ("VarHandleOp", "VariableV2")


class Net:
    """The porter's ``fn`` built on a ``[batch, S, S, 3]`` placeholder in a graph of its own, under
    ``arg_scope`` (a function returning slim's arg scope, or None): ``logits``, ``end_points`` (name -> tensor:
    the ones ``fn`` returns, else slim's ``*end_points`` collections), the model's variables."""

    def __init__(self, fn, image_size, num_classes, batch, is_training, arg_scope=None):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.images = tf.placeholder(tf.float32, [batch, image_size, image_size, 3], name="images")
            with slim.arg_scope(arg_scope()) if arg_scope else _nothing():
                out = fn(self.images, num_classes, is_training=is_training)
            logits, end_points = out if isinstance(out, (tuple, list)) else (out, None)
            if not isinstance(logits, tf.Tensor):
                raise UserError(f"LEGACY returned {type(logits).__name__}, not logits (a Tensor) or (logits,"
                                " end_points)")
            self.logits = tf.reshape(logits, [batch, num_classes]) if logits.shape.rank != 2 else logits
            self.end_points = dict(end_points) if end_points else collected_end_points(self.graph)
            self.variables = [v for v in tf.global_variables() if v.op.name.split("/")[-1] not in
                              checkpoints.NOT_MODEL]
            trained = {v.op.name for v in tf.trainable_variables()}
            self.trainable = [v for v in self.variables if v.op.name in trained]
            self.init = tf.global_variables_initializer()
            with tf.name_scope("portcheck_load"):  # every variable set in one Session.run
                self.feeds = {v.op.name: tf.placeholder(v.dtype.base_dtype, v.shape) for v in self.variables}
                self.load_op = tf.group(*[v.assign(self.feeds[v.op.name]) for v in self.variables])

    def load(self, sess, values):
        """Set the model's variables to ``values`` (``{name: array}``) in ``sess``."""
        sess.run(self.load_op, {self.feeds[name]: values[name] for name in self.feeds})

    def names(self):
        return [v.op.name for v in self.variables]

    def session(self, values):
        """A Session with ``values`` (``{name: array}``) in the model's variables."""
        sess = tf.Session(graph=self.graph)
        sess.run(self.init)
        self.load(sess, values)
        return sess

    def order(self):
        """The end points' names in the graph's topological order (ops are created after their inputs), and
        ``{name: the end points it depends on}``."""
        index = {op.name: i for i, op in enumerate(self.graph.get_operations())}
        names = sorted(self.end_points, key=lambda n: index[self.end_points[n].op.name])
        ops = {self.end_points[n].op.name: n for n in names}
        depends = {}
        for name in names:
            seen, stack = set(), [t.op for t in self.end_points[name].op.inputs]
            while stack:
                op = stack.pop()
                if op.name not in seen:
                    seen.add(op.name)
                    stack.extend(t.op for t in op.inputs)
            depends[name] = [ops[o] for o in sorted(seen & set(ops), key=index.get) if ops[o] != name]
        return names, depends

    def head(self):
        """The variables of the layer that makes the logits (walked back from them to the first kernel op)."""
        by_op = {v.op.name: v for v in self.variables}
        found, stack, seen = [], [self.logits.op], set()
        while stack and len(seen) < 50:
            op = stack.pop()
            if op.name in seen:
                continue
            seen.add(op.name)
            if op.type in VARIABLE_OPS and op.name in by_op:
                found.append(by_op[op.name])
            elif op.type in KERNEL_OPS:
                stack.append(op.inputs[1].op)
            else:
                stack.extend(t.op for t in op.inputs)
        return found if any(op.type in KERNEL_OPS for op in map(self.graph.get_operation_by_name, seen)) else []

    def variable_of(self, penalty):
        """The name of the variable a regularization loss is computed from (its op names the layer's own
        ``kernel``, not slim's ``weights``), or None."""
        stack, seen = [penalty.op], set()
        while stack and len(seen) < 20:
            op = stack.pop()
            if op.type in VARIABLE_OPS:
                return op.name
            if op.name not in seen:
                seen.add(op.name)
                stack.extend(t.op for t in op.inputs)
        return None

    def op_under(self, scope, types):
        """The first op of one of ``types`` whose name is under ``scope`` (a TF1 scope path, or its end: slim's
        inception nets key their end points without the net's scope), or None."""
        for op in self.graph.get_operations():
            if op.type in types and ("/" + op.name).find("/" + scope + "/") >= 0:
                return op
        return None


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def collected_end_points(graph):
    """slim's outputs collections (a net's ``end_points_collection``, named ``<scope>_end_points``) as one dict."""
    out = {}
    for key in graph.get_all_collection_keys():
        if key.endswith("end_points"):
            out.update(slim.utils.convert_collection_to_dict(key))
    return out


# --- values that expose mistakes ------------------------------------------------------------------------

def exposing_values(names_shapes, seed=0):
    """``{name: array}``: kernels at He's scale (a missing activation or a transposed kernel shows), BN's
    statistics far from 0 and 1 (a wrong epsilon or a skipped BN shows), gammas and betas off 1 and 0."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in names_shapes:
        leaf = name.split("/")[-1]
        if leaf == "moving_mean":
            value = rng.normal(0.0, 0.5, shape)
        elif leaf == "moving_variance":
            value = rng.uniform(0.2, 3.0, shape)
        elif leaf == "gamma":
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf in ("beta", "biases"):
            value = rng.normal(0.0, 0.2, shape)
        else:
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            if leaf == "depthwise_weights":
                fan_in = int(np.prod(shape[:2]))
            value = rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
        values[name] = value.astype(np.float32)
    return values


def expose(net, images, seed=0, spread=2.0):
    """Exposing values for ``net``, the head scaled so that the logits' standard deviation on ``images`` is
    ``spread`` (a softmax far from one-hot: every class's probability counts in the comparison)."""
    values = exposing_values([(v.op.name, v.shape.as_list()) for v in net.variables], seed)
    head = net.head()
    if head:
        with net.session(values) as sess:
            std = float(np.std(sess.run(net.logits, {net.images: images})))
        for v in head:
            values[v.op.name] = (values[v.op.name] * (spread / max(std, 1e-12))).astype(np.float32)
    return values


def write_checkpoint(net, values, prefix):
    """A TF1 Saver checkpoint of ``values`` in ``net``'s variables at ``prefix``; returns the prefix."""
    with net.graph.as_default(), net.session(values) as sess:
        return tf.train.Saver(net.variables).save(sess, prefix, write_meta_graph=False)


def outputs(net, values, images):
    """``(logits, {end point: array})`` of ``net`` (built in inference mode) on ``images``."""
    with net.session(values) as sess:
        return sess.run((net.logits, net.end_points), {net.images: images})


# --- one training step ----------------------------------------------------------------------------------

def training_step(net, values, images, labels, hyper):
    """One step of TF1's optimizer ``hyper.optimizer`` (fixed rate ``hyper.lr``) on softmax cross-entropy plus
    the REGULARIZATION_LOSSES collection, UPDATE_OPS run with it (``net`` built in training mode):
    ``{"loss", "regularization", "regularizers": {variable name: its penalty}, "values": {name: array after
    the step}}``."""
    with net.graph.as_default():
        onehot = tf.placeholder(tf.float32, net.logits.shape, name="labels")
        cross_entropy = tf.losses.softmax_cross_entropy(onehot, net.logits)
        regularizers = tf.losses.get_regularization_losses()
        regularization = tf.add_n(regularizers) if regularizers else tf.constant(0.0)
        penalties = {net.variable_of(r): r for r in regularizers}
        penalties.pop(None, None)
        total = cross_entropy + regularization
        global_step = tf.train.get_or_create_global_step()
        optimizer = optimizers.optimizer(hyper, hyper.lr)
        with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
            train_op = optimizer.minimize(total, global_step, var_list=tf.trainable_variables())
        init = tf.global_variables_initializer()
    with tf.Session(graph=net.graph) as sess:
        sess.run(init)
        net.load(sess, values)
        loss, reg, each, _ = sess.run((total, regularization, penalties, train_op),
                                      {net.images: images, onehot: labels})
        after = sess.run({v.op.name: v for v in net.variables})
    return {"loss": float(loss), "regularization": float(reg), "regularizers": {k: float(v) for k, v in each.items()},
            "values": after}
