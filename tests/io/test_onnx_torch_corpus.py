"""Real models exported by PyTorch's ONNX exporter (random weights), imported by graphc and
compared with onnxruntime: torchvision classifiers, a TransformerEncoder with a dynamic batch
axis, LSTM and GRU layers, a convolutional autoencoder, and resnet18 compiled to a C library. The tier runs where torch,
torchvision and onnxruntime are installed (they are not test extras: torch is gigabytes) and is
skipped cleanly elsewhere; `python benchmarks/models.py` reports the whole torchvision corpus."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc as gc


def _optional(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


torch, torchvision, ort = _optional("torch"), _optional("torchvision"), _optional("onnxruntime")
# the module imports everywhere (so its TESTED_OPS count); its tests run where the packages are
pytestmark = pytest.mark.skipif(None in (torch, torchvision, ort),
                                reason="the torch corpus needs torch, torchvision and onnxruntime "
                                       "(pip install torch torchvision onnxruntime)")

TESTED_OPS = {"Conv2D", "MatMul", "While", "Conv2DBackpropInput"}
TOLERANCE = 1e-4   # of the output's scale (its largest magnitude)


def export(module, args, path, dynamic_axes=None, names=("x",)):
    """torch's ONNX export (the TorchScript exporter, opset 17), quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = {"input_names": list(names), "output_names": ["y"], "opset_version": 17,
                  "dynamic_axes": dynamic_axes}
        try:
            torch.onnx.export(module.eval(), args, str(path), dynamo=False, **kwargs)
        except TypeError:   # a torch without the dynamo switch
            torch.onnx.export(module.eval(), args, str(path), **kwargs)


def compare(path, feeds: dict[str, np.ndarray], input_shapes=None) -> float:
    """Largest |graphc - onnxruntime| over the first output, relative to its scale."""
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    graph, inputs, outputs = gc.onnx.load(str(path), input_shapes=input_shapes)
    with gc.Session(graph) as sess:
        got = sess.run(outputs[0], {t: feeds[name] for t, name in zip(inputs, feeds)})
    assert got.shape == expected.shape
    return float(np.max(np.abs(got - expected)) / max(np.max(np.abs(expected)), 1e-30))


@pytest.mark.parametrize("name", ["squeezenet1_1", "resnet18", "shufflenet_v2_x0_5"])
def test_torchvision_classifiers_match_onnxruntime(tmp_path, name):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None)
    x = torch.randn(1, 3, 224, 224)
    export(model, (x,), tmp_path / "m.onnx")
    assert compare(tmp_path / "m.onnx", {"x": x.numpy()}) <= TOLERANCE


def test_a_transformer_encoder_with_a_dynamic_batch(tmp_path):
    torch.manual_seed(1)
    layer = torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, batch_first=True, dropout=0.0)
    model = torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    x = torch.randn(2, 10, 32)
    export(model, (x,), tmp_path / "t.onnx", dynamic_axes={"x": {0: "batch"}})
    for batch in (2, 5):   # the batch axis stays open: one import, any fed size
        feed = np.random.default_rng(batch).normal(size=(batch, 10, 32)).astype(np.float32)
        assert compare(tmp_path / "t.onnx", {"x": feed}) <= TOLERANCE


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_recurrent_layers_import_as_loops(tmp_path, kind):
    torch.manual_seed(2)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(8, 16, num_layers=2, batch_first=True)
            self.out = torch.nn.Linear(16, 3)

        def forward(self, x):
            seq, _ = self.rnn(x)
            return self.out(seq[:, -1])

    x = torch.randn(4, 7, 8)
    export(Net(), (x,), tmp_path / "r.onnx")
    assert compare(tmp_path / "r.onnx", {"x": x.numpy()}) <= TOLERANCE


def test_a_convolutional_autoencoder(tmp_path):
    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1), torch.nn.Sigmoid())
    x = torch.randn(2, 1, 28, 28)
    export(model, (x,), tmp_path / "ae.onnx")
    assert compare(tmp_path / "ae.onnx", {"x": x.numpy()}) <= TOLERANCE


def test_resnet18_as_a_c_library_gives_onnxruntimes_logits(tmp_path):
    """`graphc aot MODEL.onnx` (gc.aot.compile_onnx) on torchvision's resnet18, called from a C
    program (the AOT tests' driver), against onnxruntime."""
    from tests.aot.test_aot import THREADS, _build_and_run

    torch.manual_seed(4)
    x = torch.randn(1, 3, 224, 224)
    export(torchvision.models.resnet18(weights=None), (x,), tmp_path / "resnet18.onnx")
    lib = gc.aot.compile_onnx(tmp_path / "resnet18.onnx", tmp_path / "lib", "resnet18", {"x": [1, 3, 224, 224]})
    inputs = [np.random.default_rng(t).normal(size=(1, 3, 224, 224)).astype(np.float32) for t in range(THREADS)]
    runtime = ort.InferenceSession(str(tmp_path / "resnet18.onnx"), providers=["CPUExecutionProvider"])
    for (got,), a in zip(_build_and_run(lib, tmp_path, [[a] for a in inputs]), inputs):   # from C, in threads
        expected = runtime.run(None, {"x": a})[0]
        assert got.shape == expected.shape
        assert np.max(np.abs(got - expected)) <= TOLERANCE * np.max(np.abs(expected))
