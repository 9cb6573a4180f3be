"""OpDef: the one place an operation is defined.

An op definition gives its name, its attributes with their defaults, its arity, its dtype and
shape inference, its attribute checks, its NumPy reference semantics, its gradient rule (written
beside the op and registered with @register_gradient; graphc.autodiff calls it) and, for
elementwise ops, the scalar expression the code generators render.
The registry maps op type names to these definitions; graph files and the IR refer to ops by name.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from ..errors import GraphcError, InvalidArgumentError, InvalidAttributeError, internal_error
from ..ir.dtypes import DType, from_numpy
from ..ir.node import Node, freeze_attrs
from ..ir.shapes import Shape, broadcast_shapes
from ..ir.tensor import Tensor
from . import scalar as sexpr
from .attrs import derived, run_checks

TensorType = tuple[DType, Shape]
GradFn = Callable[..., Sequence[Any]]


class OpDef:
    """Base class of op definitions. Subclasses set the class attributes and override
    `infer` and `reference`; one instance per op type is registered."""

    name: ClassVar[str] = ""
    arity: ClassVar[int | tuple[int, int] | None] = None   # exact, (min, max) or None = any
    attr_defaults: ClassVar[dict[str, Any]] = {}
    # Stateful ops read or change state or produce fresh values each run (placeholders,
    # variables, random draws): never merged, never folded.
    stateful: ClassVar[bool] = False
    is_elementwise: ClassVar[bool] = False
    # Ops that must run when requested even if nothing uses their output (numerics checks).
    has_side_effect: ClassVar[bool] = False
    # "read", "set", "add" or "sub" for ops acting on a variable (see graphc.program.from_graph).
    variable_effect: ClassVar[str | None] = None
    # Inputs that only carry shape information (a reshape's target shape tensor, ...).
    shape_inputs: ClassVar[tuple[int, ...]] = ()
    # The gradient rule: grad(build, node, *output_grads) -> one gradient (or None) per input, where
    # `build` is graphc.api.gradient_builder (passed in by graphc.autodiff: ops may not import the API layer).
    grad: GradFn | None = None
    # The checks of attribute values (graphc.ops.attrs), run before inference on every node
    # created, whatever created it; ops sharing attributes (an op and its gradient twins) share
    # one table. Cross-attribute rules go in an override of `check_attrs`.
    attr_checks: ClassVar[dict[str, Any]] = {}

    @property
    def default_name(self) -> str:
        return self.name

    # ------------------------------------------------------------------ called by the IR
    def complete_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(attrs) - set(self.attr_defaults)
        if unknown:
            raise InvalidAttributeError(f"{self.name} has no attribute(s) {sorted(unknown)}")
        full = dict(self.attr_defaults)
        full.update(attrs)
        return full

    def output_types(self, inputs: Sequence[Tensor], attrs: dict[str, Any]) -> list[TensorType]:
        n = len(inputs)
        a = self.arity
        ok = a is None or (n == a if isinstance(a, int) else a[0] <= n <= a[1])
        if not ok:
            want = a if isinstance(a, int) else f"{a[0]} to {a[1]}"
            raise InvalidArgumentError(f"{self.name} takes {want} input(s), got {n}")
        self.check_attrs(attrs)
        return self.infer(inputs, attrs)

    def check_attrs(self, attrs: dict[str, Any]) -> None:
        """A GraphcError for an attribute value this op cannot take (see attr_checks)."""
        run_checks(self.name, self.attr_checks, attrs)

    def static_values(self, node: Node) -> list[np.ndarray] | None:
        """Values known while building: by default, evaluate when every input is known."""
        if self.stateful or any(t.static_value is None for t in node.inputs):
            return None
        try:
            return self.evaluate([t.static_value for t in node.inputs], dict(node.attrs))
        except (GraphcError, ArithmeticError, ValueError, IndexError, TypeError, MemoryError):
            return None  # an error in this data will be reported, with the node, when the graph runs

    def evaluate(self, inputs: list[np.ndarray], attrs: dict[str, Any]) -> list[np.ndarray]:
        """Run the reference semantics; always returns a list of arrays."""
        with np.errstate(all="ignore"):
            out = self.reference(inputs, attrs)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    # ------------------------------------------------------------------ to override
    def infer(self, inputs: Sequence[Tensor], attrs: dict[str, Any]) -> list[TensorType]:
        raise NotImplementedError

    def reference(self, inputs: list[np.ndarray], attrs: dict[str, Any]) -> Any:
        raise internal_error(f"{self.name} has no reference implementation")

    def freeze_shape_inputs(self, values: list[np.ndarray | None], attrs: dict[str, Any]) -> dict[str, Any] | None:
        """Move statically known shape inputs into attributes (for ops with `shape_inputs`).

        Called when compiling, where shapes are concrete; returns the new attributes, or None
        when a needed value is still unknown.
        """
        return None

    def __repr__(self) -> str:
        return f"<OpDef {self.name}>"


class ElementwiseOp(OpDef):
    """An op applying a scalar expression to broadcast inputs.

    `body(*args, **attrs)` builds the scalar expression from typed operands; it defines the
    output dtype, the reference semantics and (later) the generated code.
    """

    is_elementwise = True

    def __init__(
        self,
        name: str,
        arity: int | None,
        body: Callable[..., sexpr.SExpr],
        attr_defaults: dict[str, Any] | None = None,
        doc: str = "",
    ) -> None:
        self.name = name  # type: ignore[misc]
        self.arity = arity  # type: ignore[misc]
        self.body = body
        self.attr_defaults = dict(attr_defaults or {})  # type: ignore[misc]
        self.attr_checks = derived(self.attr_defaults)  # type: ignore[misc]
        self.__doc__ = doc
        self._exprs: dict[Any, sexpr.SExpr] = {}

    def scalar_expr(self, dtypes: Sequence[DType], attrs: dict[str, Any]) -> sexpr.SExpr:
        """The typed expression for operands of these dtypes (cached)."""
        key = (tuple(d.name for d in dtypes), freeze_attrs(attrs))
        expr = self._exprs.get(key)
        if expr is None:
            args = [sexpr.arg(i, d) for i, d in enumerate(dtypes)]
            expr = self.body(*args, **attrs)
            self._exprs[key] = expr
        return expr

    def infer(self, inputs: Sequence[Tensor], attrs: dict[str, Any]) -> list[TensorType]:
        if self.arity is None and not inputs:
            raise GraphcError(f"{self.name} needs at least one input")
        expr = self.scalar_expr([t.dtype for t in inputs], attrs)
        return [(expr.dtype, broadcast_shapes(*(t.shape for t in inputs)))]

    def reference(self, inputs: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
        expr = self.scalar_expr([from_numpy(a.dtype) for a in inputs], attrs)
        out = sexpr.evaluate(expr, inputs)
        shape = np.broadcast_shapes(*(np.shape(a) for a in inputs))
        if out.shape != shape:
            out = np.broadcast_to(out, shape).copy()
        return out


# --------------------------------------------------------------------------- registry
_REGISTRY: dict[str, OpDef] = {}


def register(op: Any) -> Any:
    """Register an OpDef instance, or a subclass (instantiated once). Returns the argument."""
    instance = op() if isinstance(op, type) else op
    if not instance.name:
        raise internal_error(f"{op!r} has no name")
    if instance.name in _REGISTRY:
        raise internal_error(f"op {instance.name} is defined twice")
    _REGISTRY[instance.name] = instance
    return op


def elementwise(name: str, arity: int | None, body: Callable[..., sexpr.SExpr],
                attr_defaults: dict[str, Any] | None = None, doc: str = "") -> ElementwiseOp:
    """Define and register an elementwise op."""
    op = ElementwiseOp(name, arity, body, attr_defaults, doc)
    register(op)
    return op


def get_op(name: str) -> OpDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise GraphcError(f"there is no op named {name!r}") from None


def all_ops() -> dict[str, OpDef]:
    return dict(_REGISTRY)


def register_gradient(op_name: str) -> Callable[[GradFn], GradFn]:
    """Decorator filling an op's gradient slot: grad(build, node, *output_grads) -> input grads."""
    def deco(fn: GradFn) -> GradFn:
        get_op(op_name).grad = fn
        return fn
    return deco
