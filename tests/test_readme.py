"""The README's Python examples run as written, and its two set-up commands stay in sync with CI."""
from __future__ import annotations

import pathlib
import re

import pytest

import graphc as gc

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_readme_example_runs(code, capsys):
    if "gc.onnx." in code:
        pytest.importorskip("onnx", reason="the ONNX example needs the onnx extra")
    gc.reset_default_graph()
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.strip()  # every example prints its result


def test_readme_has_demo_and_test_commands():
    assert len(EXAMPLES) >= 2
    demo = re.search(r"<!-- demo-command -->\n```bash\n(.*?)\n```", README)
    test = re.search(r"<!-- test-command -->\n```bash\n(.*?)\n```", README)
    assert demo and "graphc demo" in demo.group(1)
    assert test and "pytest" in test.group(1) and ".[test]" in test.group(1)
    assert "test-command" in (ROOT / ".ci" / "run").read_text()
