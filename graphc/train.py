"""`gc.train`: TF1 optimizers built from graph ops.

Each optimizer adds ordinary nodes: gradients (gc.gradients), slot variables (created next to
each trained variable, named like TF1's `w/Momentum`, `w/Adam`, `w/Adam_1`, not trainable), and
assignments grouped into one op. Within a step every read of a variable sees the value from the
start of the step (graphc's creation-order rule), so a fetched loss is the loss before the update.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .api import control, math
from .api.array import zeros_like
from .api.convert import convert_to_tensor
from .api.variables import Variable, trainable_variables
from .autodiff import gradients
from .checkpoint import Saver, latest_checkpoint
from .errors import GraphcError
from .ir.node import Node
from .ir.tensor import Tensor
from .schedules import cosine_decay, exponential_decay, get_global_step, get_or_create_global_step, piecewise_constant

GradsAndVars = list[tuple[Tensor | None, Variable]]


class Optimizer:
    """Base class: compute_gradients, apply_gradients and minimize, as in TF1."""

    def __init__(self, learning_rate: Any, name: str) -> None:
        self._lr = learning_rate
        self._name = name
        self._slots: dict[tuple[str, str], Variable] = {}

    # ----------------------------------------------------------------- TF1 interface
    def compute_gradients(self, loss: Any, var_list: Sequence[Variable] | None = None) -> GradsAndVars:
        """[(gradient or None, variable)] for the trainable variables (or var_list)."""
        loss = convert_to_tensor(loss)
        variables = list(var_list) if var_list is not None else trainable_variables(loss.graph)
        if not variables:
            raise GraphcError("there are no variables to optimize")
        if not loss.dtype.is_floating:
            raise GraphcError(f"the loss must be a float tensor, got {loss.dtype.name}")
        grads = gradients(loss, variables)
        return list(zip(grads, variables))

    def apply_gradients(self, grads_and_vars: Sequence[tuple[Any, Variable]], global_step: Variable | None = None,
                        name: str | None = None) -> Node:
        """One op applying the update rule to each variable with a gradient."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            names = ", ".join(v.op.name for _, v in grads_and_vars)
            raise GraphcError(f"no gradients were provided for any variable ({names}); does the loss depend on them?")
        graph = pairs[0][1].graph
        with graph.as_default(), graph.name_scope(name or self._name):
            updates = [self._apply(convert_to_tensor(g), v) for g, v in pairs]
            updates += self._finish(updates)
            if global_step is not None:
                with control.control_dependencies(updates):
                    updates.append(global_step.assign_add(1))
            return control.group(*updates, name="update")

    def minimize(self, loss: Any, global_step: Variable | None = None, var_list: Sequence[Variable] | None = None,
                 name: str | None = None) -> Node:
        """compute_gradients then apply_gradients: one training step."""
        return self.apply_gradients(self.compute_gradients(loss, var_list), global_step=global_step, name=name)

    def get_slot(self, var: Variable, name: str) -> Variable | None:
        return self._slots.get((var.op.name, name))

    def get_slot_names(self) -> list[str]:
        return sorted({name for _, name in self._slots})

    def variables(self) -> list[Variable]:
        return list(self._slots.values())

    # ----------------------------------------------------------------- for subclasses
    def _apply(self, grad: Tensor, var: Variable) -> Tensor:
        raise NotImplementedError

    def _finish(self, updates: list[Tensor]) -> list[Any]:
        return []

    def _hyper(self, value: Any, var: Variable) -> Any:
        """A hyperparameter as a weak scalar or a tensor of the variable's dtype."""
        if isinstance(value, (int, float)):
            return float(value)
        return math.cast(convert_to_tensor(value), var.dtype)

    def _slot(self, var: Variable, slot: str, suffix: str, fill: float = 0.0) -> Variable:
        """The slot variable `slot` of `var` (named var/suffix, not trainable), first `fill`."""
        key = (var.op.name, slot)
        if key not in self._slots:
            with var.graph.name_scope(None):
                start = zeros_like(var.initial_value)
                if fill:
                    start = math.add(start, math.cast(convert_to_tensor(fill), var.dtype))
                self._slots[key] = Variable(start, name=f"{var.op.name}/{suffix}", trainable=False)
        return self._slots[key]


def _one_minus(h: Any) -> Any:
    """1 - h, in Python for a number (two Python floats in a graph op would make float32)."""
    return 1.0 - h if isinstance(h, float) else math.subtract(1.0, h)


class GradientDescentOptimizer(Optimizer):
    """var -= lr * grad."""

    def __init__(self, learning_rate: Any, use_locking: bool = False, name: str = "GradientDescent") -> None:
        super().__init__(learning_rate, name)

    def _apply(self, grad: Tensor, var: Variable) -> Tensor:
        return var.assign_sub(math.multiply(self._hyper(self._lr, var), grad))


class MomentumOptimizer(Optimizer):
    """accum = momentum * accum + grad; var -= lr * accum (Nesterov: lr * (grad + momentum * accum))."""

    def __init__(self, learning_rate: Any, momentum: Any, use_locking: bool = False, name: str = "Momentum",
                 use_nesterov: bool = False) -> None:
        super().__init__(learning_rate, name)
        self._momentum = momentum
        self._nesterov = use_nesterov

    def _apply(self, grad: Tensor, var: Variable) -> Tensor:
        accum = self._slot(var, "momentum", "Momentum")
        mu, lr = self._hyper(self._momentum, var), self._hyper(self._lr, var)
        new_accum = accum.assign(math.add(math.multiply(mu, accum), grad))
        step = math.add(grad, math.multiply(mu, new_accum)) if self._nesterov else new_accum
        return var.assign_sub(math.multiply(lr, step))


class AdamOptimizer(Optimizer):
    """Adam as TF1 computes it: lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t);
    m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; var -= lr_t * m / (sqrt(v) + epsilon).
    The powers beta1^t and beta2^t are variables, updated after every step."""

    def __init__(self, learning_rate: Any = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, use_locking: bool = False, name: str = "Adam", lr: Any = None) -> None:
        super().__init__(lr if lr is not None else learning_rate, name)
        self._beta1, self._beta2, self._epsilon = beta1, beta2, epsilon
        self._powers: dict[Any, tuple[Variable, Variable]] = {}

    def _beta_powers(self, var: Variable) -> tuple[Variable, Variable]:
        key = (id(var.graph), var.dtype)
        if key not in self._powers:
            with var.graph.name_scope(None):
                b1 = Variable(convert_to_tensor(self._beta1, dtype=var.dtype), name="beta1_power", trainable=False)
                b2 = Variable(convert_to_tensor(self._beta2, dtype=var.dtype), name="beta2_power", trainable=False)
            self._powers[key] = (b1, b2)
        return self._powers[key]

    def _apply(self, grad: Tensor, var: Variable) -> Tensor:
        m = self._slot(var, "m", "Adam")
        v = self._slot(var, "v", "Adam_1")
        b1_power, b2_power = self._beta_powers(var)
        b1, b2, eps = (self._hyper(h, var) for h in (self._beta1, self._beta2, self._epsilon))
        lr_t = math.multiply(self._hyper(self._lr, var),
                             math.divide(math.sqrt(math.subtract(1.0, b2_power)), math.subtract(1.0, b1_power)))
        new_m = m.assign(math.add(math.multiply(b1, m), math.multiply(_one_minus(b1), grad)))
        new_v = v.assign(math.add(math.multiply(b2, v), math.multiply(_one_minus(b2), math.square(grad))))
        step = math.divide(new_m, math.add(math.sqrt(new_v), eps))
        return var.assign_sub(math.multiply(lr_t, step))

    def _finish(self, updates: list[Tensor]) -> list[Any]:
        finished = []
        with control.control_dependencies(updates):
            for b1_power, b2_power in self._powers.values():
                finished.append(b1_power.assign(math.multiply(b1_power, self._hyper(self._beta1, b1_power))))
                finished.append(b2_power.assign(math.multiply(b2_power, self._hyper(self._beta2, b2_power))))
        return finished

    def get_slot_names(self) -> list[str]:
        return ["m", "v"]


class RMSPropOptimizer(Optimizer):
    """TF1's RMSProp: ms = decay ms + (1 - decay) g^2 (ms starts at 1, as in TF1); with
    centered, mg = decay mg + (1 - decay) g and the denominator uses ms - mg^2;
    mom = momentum mom + lr g / sqrt(denominator + epsilon); var -= mom."""

    def __init__(self, learning_rate: Any, decay: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-10,
                 use_locking: bool = False, centered: bool = False, name: str = "RMSProp") -> None:
        super().__init__(learning_rate, name)
        self._decay, self._momentum, self._epsilon, self._centered = decay, momentum, epsilon, centered

    def _apply(self, grad: Tensor, var: Variable) -> Tensor:
        ms = self._slot(var, "rms", "RMSProp", fill=1.0)
        mom = self._slot(var, "momentum", "RMSProp_1")
        rho, mu, eps, lr = (self._hyper(h, var) for h in (self._decay, self._momentum, self._epsilon, self._lr))
        new_ms = ms.assign(math.add(math.multiply(rho, ms), math.multiply(_one_minus(rho), math.square(grad))))
        denominator = new_ms
        if self._centered:
            mg = self._slot(var, "mg", "RMSProp_2")
            new_mg = mg.assign(math.add(math.multiply(rho, mg), math.multiply(_one_minus(rho), grad)))
            denominator = math.subtract(new_ms, math.square(new_mg))
        step = math.divide(math.multiply(lr, grad), math.sqrt(math.add(denominator, eps)))
        new_mom = mom.assign(math.add(math.multiply(mu, mom), step))
        return var.assign_sub(new_mom)

    def get_slot_names(self) -> list[str]:
        return ["mg", "momentum", "rms"] if self._centered else ["momentum", "rms"]


class AdagradOptimizer(Optimizer):
    """accum += g^2 (accum starts at initial_accumulator_value); var -= lr g / sqrt(accum)."""

    def __init__(self, learning_rate: Any, initial_accumulator_value: float = 0.1, use_locking: bool = False,
                 name: str = "Adagrad") -> None:
        if initial_accumulator_value <= 0:
            raise GraphcError(f"initial_accumulator_value must be positive, got {initial_accumulator_value}")
        super().__init__(learning_rate, name)
        self._initial = initial_accumulator_value

    def _apply(self, grad: Tensor, var: Variable) -> Tensor:
        accum = self._slot(var, "accumulator", "Adagrad", fill=self._initial)
        new_accum = accum.assign_add(math.square(grad))
        step = math.divide(math.multiply(self._hyper(self._lr, var), grad), math.sqrt(new_accum))
        return var.assign_sub(step)


class AdadeltaOptimizer(Optimizer):
    """accum = rho accum + (1 - rho) g^2; update = sqrt(accum_update + eps) / sqrt(accum + eps) g;
    accum_update = rho accum_update + (1 - rho) update^2; var -= lr update."""

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-8,
                 use_locking: bool = False, name: str = "Adadelta") -> None:
        super().__init__(learning_rate, name)
        self._rho, self._epsilon = rho, epsilon

    def _apply(self, grad: Tensor, var: Variable) -> Tensor:
        accum = self._slot(var, "accum", "Adadelta")
        accum_update = self._slot(var, "accum_update", "Adadelta_1")
        rho, eps, lr = (self._hyper(h, var) for h in (self._rho, self._epsilon, self._lr))
        new_accum = accum.assign(math.add(math.multiply(rho, accum), math.multiply(_one_minus(rho), math.square(grad))))
        update = math.multiply(math.divide(math.sqrt(math.add(accum_update, eps)), math.sqrt(math.add(new_accum, eps))),
                               grad)
        done = accum_update.assign(math.add(math.multiply(rho, accum_update),
                                            math.multiply(_one_minus(rho), math.square(update))))
        with control.control_dependencies([done]):
            return var.assign_sub(math.multiply(lr, update))


class AdamWOptimizer(AdamOptimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter; tf.contrib.opt.AdamWOptimizer):
    var -= weight_decay * var + the Adam step, the decay not scaled by the learning rate."""

    def __init__(self, weight_decay: Any, learning_rate: Any = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, use_locking: bool = False, name: str = "AdamW") -> None:
        super().__init__(learning_rate, beta1, beta2, epsilon, use_locking, name)
        self._weight_decay = weight_decay

    def _apply(self, grad: Tensor, var: Variable) -> Tensor:
        decay = math.multiply(self._hyper(self._weight_decay, var), var)   # the value from the step's start
        adam = super()._apply(grad, var)
        with control.control_dependencies([adam]):
            return var.assign_sub(decay)


__all__ = ["AdadeltaOptimizer", "AdagradOptimizer", "AdamOptimizer", "AdamWOptimizer", "GradientDescentOptimizer",
           "MomentumOptimizer", "Optimizer", "RMSPropOptimizer", "Saver", "cosine_decay", "exponential_decay",
           "get_global_step", "get_or_create_global_step", "latest_checkpoint", "piecewise_constant"]
