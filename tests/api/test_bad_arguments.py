"""Bad arguments to the builders are GraphcErrors that say what is wrong, never NumPy's raw
OverflowError or ZeroDivisionError (found by fuzzing the ONNX importer, which builds through
these)."""
import pytest

import graphc as gc


def test_pad_value_that_does_not_fit_the_dtype():
    x = gc.placeholder(gc.int32, [3])
    with pytest.raises(gc.DTypeError, match="constant_values inf does not fit .* int32"):
        gc.pad(x, [[1, 1]], constant_values=float("inf"))
    assert gc.pad(x, [[1, 1]], constant_values=7).shape == (5,)


@pytest.mark.parametrize("args, message", [((0, 5, 0), "delta must not be zero"),
                                           ((0, 1e30, 1e-30), "cannot be built")])
def test_range_that_cannot_be_built(args, message):
    with pytest.raises(gc.InvalidArgumentError, match=message):
        gc.range(*args)
    assert gc.range(0, 5, 2).shape == (3,)


def test_wrong_number_of_inputs_and_unknown_attributes_are_graphc_errors():
    from graphc.api.convert import apply1
    x = gc.placeholder(gc.float32, [3])
    with pytest.raises(gc.InvalidArgumentError, match="Add takes 2 input"):
        apply1("Add", [x], {})
    with pytest.raises(gc.InvalidAttributeError, match="no attribute"):
        apply1("Relu", [x], {"alpha": 1.0})
