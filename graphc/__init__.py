"""graphc: a symbolic graph compiler for Python in the line of Theano and TensorFlow 1.

    import graphc as gc
    x = gc.placeholder(gc.float32, [None, 3])
    y = gc.reduce_sum(gc.tanh(x) * 2.0, axis=1)
    with gc.Session() as sess:
        print(sess.run(y, {x: [[1, 2, 3]]}))
"""
from __future__ import annotations

from . import api as _api  # noqa: F401  (installs tensor operators)
from . import testing, train
from .api import nn
from .api.array import (broadcast_to, concat, expand_dims, fill, gather, getitem, one_hot, ones, ones_like,
                        pad, range, reshape, shape, slice, split, squeeze, stack, tile, transpose, unstack,
                        zeros, zeros_like)
from .api import layers
from .api.clip import clip_by_global_norm, clip_by_norm, global_norm
from .api.initializers import (constant_initializer, glorot_normal_initializer, glorot_uniform_initializer,
                               he_normal, he_uniform, ones_initializer, orthogonal_initializer,
                               random_normal_initializer, random_uniform_initializer, truncated_normal_initializer,
                               variance_scaling_initializer, zeros_initializer)
from .api.scopes import AUTO_REUSE, GraphKeys, add_to_collection, get_collection, get_variable, variable_scope
from .api.composite import (argsort, cumprod, cumsum, einsum, eye, gather_nd, l2_normalize, sort, tensordot,
                            top_k, truncated_normal)
from .api.control import (check_numerics, control_dependencies, group, identity, name_scope, no_op,
                          stop_gradient)
from .api.control_flow import cond, foldl, foldr, map_fn, scan, while_loop
from .api.convert import constant, convert_to_tensor
from .api.graph_edit import clone_replace
from .api.math import (abs, add, add_n, argmax, argmin, cast, ceil, clip_by_value, cos, divide, equal, erf,
                       exp, expm1, floor, floordiv, floormod, greater, greater_equal, is_finite, is_inf,
                       is_nan, less, less_equal, log, log1p, logical_and, logical_not, logical_or,
                       logical_xor, matmul, maximum, minimum, mod, multiply, negative, not_equal, pow,
                       reciprocal, reduce_all, reduce_any, reduce_logsumexp, reduce_max, reduce_mean,
                       reduce_min, reduce_prod, reduce_sum, round, rsqrt, sigmoid, sign, sin, sqrt, square,
                       squared_difference, subtract, tanh, truediv, where)
from .api.random import random_normal, random_uniform, set_random_seed
from .api.variables import (Variable, global_variables, global_variables_initializer,
                            local_variables_initializer, placeholder, placeholder_with_default,
                            trainable_variables, variables_initializer)
from .autodiff import gradients, hessians
from . import autodiff_control as _autodiff_control  # noqa: F401  (gradients of loops and branches)
from .backends import available_backends
from .config import ConfigProto
from .debugprint import debugprint
from .errors import (BackendUnavailableError, CompileError, DeviceError, DistributedError, DTypeError, FailedPreconditionError, FeedError,
                     GraphcError, GraphFileError, InvalidArgumentError, InvalidAttributeError, ResourceExhaustedError,
                     ShapeError)
from .function import Function, function
from .ir.context import get_default_session
from .ir.dtypes import DType, as_dtype, bool_, float32, float64, int32, int64
from .ir.graph import Graph, NotFoundError, get_default_graph, reset_default_graph
from .ir.node import Node
from .ir.tensor import Tensor
from .session import InteractiveSession, Session
from . import callbacks, summary
from .printing import Print, print_
from .api.layer_objects import Input, learning_phase
from .callbacks import History
from .models import Model, Sequential
from .model_files import load_model
from .module import Module
from .io import load_graph, onnx, save_graph
from . import aot

from .version import __version__

print = print_  # noqa: A001 - tf.print (gc.print; left out of __all__ so `import *` keeps Python's print)
bool = bool_  # noqa: A001 - the API's name for the dtype, as TF's tf.bool
Operation = Node

# The public names (`from graphc import *`): the API, its dtypes and errors, and the user-facing
# submodules; not the layers below (ir, ops, passes, lower, codegen, runtime, backends, ...).
__all__ = [
    "Module",
    "History", "Input", "Model", "Sequential", "callbacks", "summary", "Print", "learning_phase", "load_model",
    "AUTO_REUSE", "GraphKeys", "add_to_collection", "constant_initializer", "get_collection", "get_variable",
    "glorot_normal_initializer", "glorot_uniform_initializer", "he_normal", "he_uniform", "layers",
    "ones_initializer", "orthogonal_initializer", "random_normal_initializer", "random_uniform_initializer",
    "truncated_normal_initializer", "variable_scope", "variance_scaling_initializer", "zeros_initializer",
    "argsort", "cumprod", "cumsum", "einsum", "eye", "gather_nd", "l2_normalize", "sort", "tensordot", "top_k",
    "truncated_normal", "InteractiveSession",
    "clip_by_global_norm", "clip_by_norm", "global_norm",
    "BackendUnavailableError", "CompileError", "ConfigProto", "DType", "DTypeError", "DeviceError", "DistributedError",
    "FailedPreconditionError",
    "FeedError", "Function", "Graph", "GraphFileError", "GraphcError", "InvalidArgumentError", "InvalidAttributeError",
    "Node", "NotFoundError",
    "Operation", "ResourceExhaustedError", "Session", "ShapeError", "Tensor", "Variable", "abs", "add", "add_n", "aot",
    "argmax", "argmin", "as_dtype", "available_backends", "bool", "bool_", "broadcast_to", "cast", "ceil",
    "check_numerics", "clip_by_value", "clone_replace", "concat", "cond", "constant", "control_dependencies",
    "convert_to_tensor", "cos", "debugprint", "divide", "equal", "erf", "exp", "expand_dims", "expm1", "fill",
    "float32", "float64", "floor", "floordiv", "floormod", "foldl", "foldr", "function", "gather", "get_default_graph",
    "get_default_session", "getitem", "global_variables", "global_variables_initializer", "gradients", "greater",
    "greater_equal", "group", "hessians", "identity", "int32", "int64", "is_finite", "is_inf", "is_nan", "less",
    "less_equal", "load_graph", "local_variables_initializer", "log", "log1p", "logical_and", "logical_not",
    "logical_or", "logical_xor", "map_fn", "matmul", "maximum", "minimum", "mod", "multiply", "name_scope", "negative", "nn",
    "no_op", "not_equal", "one_hot", "ones", "ones_like", "onnx", "pad", "placeholder", "placeholder_with_default",
    "pow", "random_normal", "random_uniform", "range", "reciprocal", "reduce_all", "reduce_any", "reduce_logsumexp",
    "reduce_max", "reduce_mean", "reduce_min", "reduce_prod", "reduce_sum", "reset_default_graph", "reshape",
    "round", "rsqrt", "save_graph", "scan", "set_random_seed", "shape", "sigmoid", "sign", "sin", "slice", "split", "sqrt",
    "square", "squared_difference", "squeeze", "stack", "stop_gradient", "subtract", "tanh", "testing", "tile",
    "train", "trainable_variables", "transpose", "truediv", "unstack", "variables_initializer", "where", "while_loop", "zeros",
    "zeros_like", "__version__",
]
