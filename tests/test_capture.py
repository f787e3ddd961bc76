"""capture_runs: many workflows, one trace each, failures recorded and not fatal."""

from __future__ import annotations

from conftest import FAST, t

from netra_ws import read_trace
from netra_ws.capture import capture_runs


def test_capture_runs_in_parallel_writes_one_trace_per_run(tmp_path):
    df = capture_runs(
        None,
        6,
        concurrency=3,
        out_dir=tmp_path,
        name="par",
        timeout=t(10),
        progress=False,
        server_options={"scenario": FAST},
    )
    files = sorted(p.name for p in (tmp_path / "par").glob("*.jsonl"))
    assert files == [f"run-{i:04d}.jsonl" for i in range(1, 7)]
    assert df.attrs["failures"] == {}
    completed = df[df["event"] == "agent_completed"]
    assert len(completed) == 6 and completed["trace"].nunique() == 6
    assert df.groupby("trace")["run_id"].nunique().max() == 1  # one run per trace
    assert read_trace(tmp_path / "par" / "run-0001.jsonl").meta["labels"]["capture"] == "par"


def test_failed_runs_are_recorded_not_fatal(tmp_path):
    # staging-937 swallows user_message: every run times out, and says so.
    df = capture_runs(
        None,
        2,
        out_dir=tmp_path,
        name="swallowed",
        timeout=t(0.5),
        progress=False,
        server_options={"scenario": FAST, "dialect": "staging-937"},
    )
    assert set(df.attrs["failures"]) == {"run-0001.jsonl", "run-0002.jsonl"}
    assert all("timeout" in reason for reason in df.attrs["failures"].values())
    assert not df["event"].isin(["agent_started", "agent_completed"]).any()


def test_refused_target_is_recorded_per_run(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"
        df = capture_runs(url, 2, out_dir=tmp_path, name="refused", progress=False)
    assert len(df) == 0
    assert all(r.startswith("ConnectRefused") for r in df.attrs["failures"].values())
    records = read_trace(tmp_path / "refused" / "run-0001.jsonl").records
    assert records[0]["kind"] == "error" and records[0]["exception"] == "ConnectRefused"
