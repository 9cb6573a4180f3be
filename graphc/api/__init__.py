"""The user-facing builders: functions that add ops to the default graph (TF1 / Theano names).
Importing this package also installs the Python operators on tensors and variables."""
from . import array, control, control_flow, convert, graph_edit, math, nn, operators, random, variables

__all__ = ["array", "control", "control_flow", "convert", "graph_edit", "math", "nn", "operators", "random", "variables"]
