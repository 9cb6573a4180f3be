"""gc.train.Saver: TF1 file names (path-STEP.index / .data-00000-of-00001, a `checkpoint`
file), values restored exactly into another session and backend, max_to_keep, var_list as a
dict of names, latest_checkpoint; restoring checks names, dtypes and shapes and lists every
mismatch before setting anything; hostile checkpoint files are refused, never executed."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"VariableV2", "ReadVariable", "Assign"}


def _model():
    w = gc.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="w")
    b = gc.Variable(np.array([1, 2], np.int64), name="b")
    flag = gc.Variable(True, name="flag")
    return w, b, flag


def test_save_and_restore_into_another_session_and_backend(tmp_path):
    w, b, flag = _model()
    step = gc.train.get_or_create_global_step()
    saver = gc.train.Saver(max_to_keep=2)
    with gc.Session() as sess:
        sess.run(gc.global_variables_initializer())
        sess.run([w.assign(w * 2.0), b.assign_add(gc.constant([5, 5], dtype=gc.int64)), flag.assign(False)])
        paths = []
        for k in range(3):
            sess.run(step.assign_add(1))
            paths.append(saver.save(sess, str(tmp_path / "model"), global_step=step))
        trained = sess.run([w, b, flag])
    assert [os.path.basename(p) for p in paths] == ["model-1", "model-2", "model-3"]
    assert not os.path.exists(paths[0] + ".index") and os.path.exists(paths[1] + ".index")   # max_to_keep=2
    assert os.path.exists(paths[2] + ".data-00000-of-00001")
    state = (tmp_path / "checkpoint").read_text()
    assert state.splitlines()[0] == 'model_checkpoint_path: "model-3"' and '"model-2"' in state
    assert gc.train.latest_checkpoint(str(tmp_path)) == paths[2]
    with gc.Session(backend="numpy") as other:
        saver.restore(other, gc.train.latest_checkpoint(str(tmp_path)))
        got = other.run([w, b, flag])
        assert other.run(step) == 3
    for g, t in zip(got, trained):
        np.testing.assert_array_equal(g, t)
        assert np.asarray(g).dtype == np.asarray(t).dtype


def test_var_list_dict_names_and_uninitialized_variables(tmp_path):
    w, _, _ = _model()
    saver = gc.train.Saver({"layer/kernel": w})
    with gc.Session() as sess:
        with pytest.raises(gc.FailedPreconditionError, match="'w' is uninitialized"):
            saver.save(sess, str(tmp_path / "m"))
        sess.run(gc.global_variables_initializer())
        path = saver.save(sess, str(tmp_path / "m"))
    index = json.loads((tmp_path / "m.index").read_text())
    assert [v["name"] for v in index["variables"]] == ["layer/kernel"]
    with gc.Session() as sess:
        sess.run(gc.global_variables_initializer())
        sess.run(w.assign(gc.zeros([2, 3])))
        saver.restore(sess, path)
        np.testing.assert_array_equal(sess.run(w), np.arange(6).reshape(2, 3))


def test_restore_lists_every_mismatch_and_sets_nothing(tmp_path):
    with gc.Graph().as_default():
        _model()
        with gc.Session() as sess:
            sess.run(gc.global_variables_initializer())
            path = gc.train.Saver().save(sess, str(tmp_path / "m"))
    with gc.Graph().as_default():
        w = gc.Variable(np.zeros((3, 2), np.float32), name="w")       # another shape
        b = gc.Variable(np.zeros(2, np.float64), name="b")            # another dtype
        extra = gc.Variable(1.0, name="extra")                         # not saved
        with gc.Session() as sess:
            sess.run(gc.global_variables_initializer())
            with pytest.raises(gc.NotFoundError) as err:
                gc.train.Saver([w, b, extra]).restore(sess, path)
            text = str(err.value)
            assert "'w' has shape (2, 3) in the checkpoint, (3, 2)" in text
            assert "'b' is int64 in the checkpoint, float64" in text and "'extra' is not in the checkpoint" in text
            np.testing.assert_array_equal(sess.run(w), np.zeros((3, 2)))   # nothing was set


def _saved(tmp_path):
    with gc.Graph().as_default():
        _model()
        with gc.Session() as sess:
            sess.run(gc.global_variables_initializer())
            return gc.train.Saver().save(sess, str(tmp_path / "m"))


@pytest.mark.parametrize("change, fragment", [
    (lambda doc: doc.update(format="pickle"), "not a graphc checkpoint index"),
    (lambda doc: doc["variables"][0].update(dtype="object"), "is not one of"),
    (lambda doc: doc["variables"][0].update(nbytes=4), "do not hold"),
    (lambda doc: doc["variables"][0].update(offset=1 << 30), "past the end of the file"),
    (lambda doc: doc["variables"][-1].update(offset=doc["variables"][-1]["offset"] + 1), "past the end|ends first"),
    (lambda doc: doc["variables"][0].update(shape=[-1, 3]), "shape must be"),
    (lambda doc: doc["variables"].append(dict(doc["variables"][0])), "must be a new"),
])
def test_hostile_checkpoints_are_refused(tmp_path, change, fragment):
    path = _saved(tmp_path)
    doc = json.loads((tmp_path / "m.index").read_text())
    change(doc)
    (tmp_path / "m.index").write_text(json.dumps(doc))
    with gc.Graph().as_default():
        _model()
        with gc.Session() as sess, pytest.raises(gc.GraphcError, match=fragment):
            gc.train.Saver().restore(sess, path)


def test_a_fifo_or_garbage_is_refused_at_once(tmp_path):
    path = _saved(tmp_path)
    os.remove(path + ".index")
    os.mkfifo(path + ".index")
    with gc.Graph().as_default():
        _model()
        with gc.Session() as sess, pytest.raises(gc.GraphcError):
            gc.train.Saver().restore(sess, path)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "../../etc/passwd"\n')
    with pytest.raises(gc.GraphFileError, match="not a file name in the folder"):
        gc.train.latest_checkpoint(str(tmp_path))
    assert gc.train.latest_checkpoint(str(tmp_path / "nowhere")) is None
