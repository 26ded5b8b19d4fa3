"""Export fitted fastmlp estimators to ONNX through skl2onnx.

The classifier goes through skl2onnx's own ``MLPClassifier`` converter (its
graph, its options such as ``zipmap``); the regressor through a converter of the
same graph that also covers several outputs and the ``exp`` output of
``loss='poisson'``. What ONNX conversion cannot express here (a hidden
activation other than scikit-learn's four, one activation per layer, a
classifier fitted on one class) is refused with an error naming the option.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._multilayer_perceptron import MLPClassifier, MLPRegressor

# scikit-learn's hidden activations: the ones skl2onnx's MLP converter maps
ONNX_HIDDEN_ACTIVATIONS = {
    "identity": "Identity",
    "logistic": "Sigmoid",
    "tanh": "Tanh",
    "relu": "Relu",
}
_REGRESSOR_OUTPUTS = {"identity": "Identity", "exp": "Exp"}

_registered = False


def _check_convertible(model):
    """Refuse, naming the option, what the ONNX graph cannot express."""
    check_is_fitted(model)
    name = type(model).__name__
    activation = model.activation
    if not isinstance(activation, str):
        raise ValueError(
            f"cannot convert this {name} to ONNX: activation={activation!r} gives each "
            "hidden layer its own activation; the ONNX conversion supports one activation "
            f"for all hidden layers, one of {sorted(ONNX_HIDDEN_ACTIVATIONS)}."
        )
    if activation not in ONNX_HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"cannot convert this {name} to ONNX: activation={activation!r} is not one of "
            f"scikit-learn's activations {sorted(ONNX_HIDDEN_ACTIVATIONS)}, which "
            "skl2onnx's MLP converter maps."
        )
    if isinstance(model, MLPClassifier) and len(model.classes_) < 2:
        raise ValueError(
            f"cannot convert this {name} to ONNX: it was fitted on a single class "
            f"({model.classes_[0]!r}); skl2onnx's classifier graph needs two or more."
        )


def _convert_classifier(scope, operator, container):
    """skl2onnx converter of :class:`fastmlp.MLPClassifier`: scikit-learn's."""
    from skl2onnx.operator_converters.multilayer_perceptron import (
        convert_sklearn_mlp_classifier,
    )

    _check_convertible(operator.raw_operator)
    convert_sklearn_mlp_classifier(scope, operator, container)


def _regressor_output_shape(operator):
    """skl2onnx shape calculator of :class:`fastmlp.MLPRegressor`: ``[N, n_outputs_]``
    in the input's float type (float32 for integer input)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    inputs = operator.inputs[0]
    tensor_type = (
        DoubleTensorType if isinstance(inputs.type, DoubleTensorType) else FloatTensorType
    )
    n_rows = inputs.get_first_dimension()
    operator.outputs[0].type = tensor_type([n_rows, operator.raw_operator.n_outputs_])


def _convert_regressor(scope, operator, container):
    """skl2onnx converter of :class:`fastmlp.MLPRegressor`: the forward pass,
    ``MatMul``, ``Add`` and the activation per layer."""
    from skl2onnx.common.data_types import guess_proto_type
    from skl2onnx.proto import onnx_proto

    model = operator.raw_operator
    _check_convertible(model)
    proto_dtype = guess_proto_type(operator.inputs[0].type)
    if proto_dtype != onnx_proto.TensorProto.DOUBLE:
        proto_dtype = onnx_proto.TensorProto.FLOAT
    dtype = np.float64 if proto_dtype == onnx_proto.TensorProto.DOUBLE else np.float32

    def add_node(op_type, inputs, **attributes):
        output = scope.get_unique_variable_name(op_type.lower())
        container.add_node(
            op_type, inputs, output, name=scope.get_unique_operator_name(op_type), **attributes
        )
        return output

    values = add_node("Cast", operator.inputs[0].full_name, to=proto_dtype)
    n_layers = len(model.coefs_)
    for layer, (coef, intercept) in enumerate(zip(model.coefs_, model.intercepts_)):
        coef_name = scope.get_unique_variable_name("coefficient")
        intercept_name = scope.get_unique_variable_name("intercepts")
        container.add_initializer(coef_name, proto_dtype, coef.shape, coef.astype(dtype).ravel())
        container.add_initializer(
            intercept_name, proto_dtype, [1, len(intercept)], intercept.astype(dtype)
        )
        values = add_node("Add", [add_node("MatMul", [values, coef_name]), intercept_name])
        if layer < n_layers - 1:
            values = add_node(ONNX_HIDDEN_ACTIVATIONS[model.activation], values)
    container.add_node(
        _REGRESSOR_OUTPUTS[model.out_activation_],
        values,
        operator.outputs[0].full_name,
        name=scope.get_unique_operator_name("Output"),
    )


def register_onnx_converters():
    """Register fastmlp's estimators with skl2onnx.

    Afterwards ``skl2onnx.to_onnx`` (and ``convert_sklearn``) convert
    :class:`MLPClassifier` and :class:`MLPRegressor`, alone or inside a
    pipeline. :func:`to_onnx` calls this; calling it again does nothing.
    """
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        MLPClassifier,
        "FastmlpMLPClassifier",
        calculate_linear_classifier_output_shapes,
        _convert_classifier,
        options={
            "zipmap": [True, False, "columns"],
            "output_class_labels": [False, True],
            "nocl": [True, False],
        },
    )
    update_registered_converter(
        MLPRegressor, "FastmlpMLPRegressor", _regressor_output_shape, _convert_regressor
    )
    _registered = True


def to_onnx(model, X_sample, **kwargs):
    """Convert a fitted fastmlp estimator, or a pipeline holding one, to ONNX.

    Needs skl2onnx (and onnxruntime to run the result): ``pip install skl2onnx
    onnxruntime``, or the ``onnx`` extra.

    Parameters
    ----------
    model : MLPClassifier, MLPRegressor or Pipeline
        A fitted estimator; any scikit-learn steps around it that skl2onnx
        converts are converted too.
    X_sample : array-like of shape (n_samples, n_features)
        A few input rows: their dtype sets the graph's input type (float32
        gives a float32 graph, float64 a float64 one).
    **kwargs
        Passed to ``skl2onnx.to_onnx`` (e.g. ``options={"zipmap": False}``,
        ``target_opset``).

    Returns
    -------
    onnx.ModelProto
        The model. Its outputs are scikit-learn's: ``label`` and
        ``probabilities`` for a classifier, ``variable`` of shape
        ``(n_samples, n_outputs_)`` for a regressor.

    Raises
    ------
    ValueError
        When the model uses what the ONNX graph cannot express: a hidden
        activation other than identity, logistic, tanh and relu (gelu, elu,
        selu, softplus, leaky_relu), one activation per layer, or a classifier
        fitted on a single class.
    """
    try:
        import skl2onnx
    except ImportError:
        raise ImportError(
            "fastmlp.to_onnx needs skl2onnx (and onnxruntime to run the model): "
            "pip install skl2onnx onnxruntime"
        ) from None
    check_is_fitted(model)  # skl2onnx's own message for an unfitted model is obscure
    if isinstance(model, (MLPClassifier, MLPRegressor)):
        _check_convertible(model)  # before skl2onnx parses it
    register_onnx_converters()
    return skl2onnx.to_onnx(model, X_sample, **kwargs)
