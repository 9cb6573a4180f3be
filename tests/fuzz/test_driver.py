"""The fuzz driver counts every kind of outcome: a result, a GraphcError, a raw exception, a
hang, a crash and memory over the bound, and carries on after each."""
from tests.fuzz import driver


def test_driver_counts_every_outcome(tmp_path):
    summary = driver.run("selftest", seed=0, count=7, timeout=4, rss_mb=200, keep=tmp_path / "kept")
    assert summary["labels"] == {"ok": 2, "GraphFileError": 1, "exception": 1, "hang": 1, "crash": 1, "rss": 1}
    assert [f["label"] for f in summary["failures"]] == ["exception", "hang", "crash", "rss"]
    assert "ValueError: a raw exception" in summary["failures"][0]["error"]
    assert len(list((tmp_path / "kept").iterdir())) == 4
