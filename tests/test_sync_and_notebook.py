"""The blocking façade, in a script, inside a running loop, and in a real Jupyter kernel."""

from __future__ import annotations

import asyncio
import textwrap

import nbformat
import pytest
from conftest import FAST, t
from nbclient import NotebookClient

from netra_ws import read_trace, sync


def test_sync_session_runs_a_workflow(server, tmp_path):
    path = tmp_path / "sync.jsonl"
    with sync.connect(server.url, trace=path) as session:
        assert session.next(timeout=t(5)).name == "connection_established"
        session.send_user_message("hello")
        result = session.collect(until="agent_completed", timeout=t(10))
    assert result.reason == "matched"
    assert session.closed and session.close_code == 1000
    assert read_trace(path).frames[-1]["event"] == "agent_completed"


def test_sync_session_works_while_a_loop_runs_on_this_thread(server):
    """A Jupyter kernel's situation: blocking calls made from inside a running loop."""

    async def inside_a_running_loop():
        with sync.connect(server.url) as session:
            return session.next(timeout=t(5)).name

    assert asyncio.run(inside_a_running_loop()) == "connection_established"


NOTEBOOK_CELLS = [
    """
    import netra_ws
    from netra_ws import sync
    from netra_ws.server import EmbeddedServer, Scenario
    server = EmbeddedServer(scenario=Scenario(first_delay=0.005, step_delay=0.005)).start()
    """,
    # Top-level await on the kernel's own loop.
    """
    async with netra_ws.connect(server.url) as session:
        first = await session.next(timeout=TIMEOUT)
        await session.send_user_message("from a notebook")
        result = await session.collect(until="agent_completed", timeout=TIMEOUT)
    assert first.name == "connection_established", first
    assert result.reason == "matched", result.names
    """,
    # The blocking API in the same kernel.
    """
    with sync.connect(server.url) as s:
        assert s.next(timeout=TIMEOUT).name == "connection_established"
        s.send_user_message("blocking")
        blocking = s.collect(until="agent_completed", timeout=TIMEOUT)
    assert blocking.reason == "matched", blocking.names
    print("names:", blocking.names)
    """,
    "server.stop()",
]


@pytest.mark.parametrize("nest", [False, True], ids=["plain", "nest_asyncio"])
def test_notebook_with_top_level_await_and_blocking_api(nest):
    cells = [f"TIMEOUT = {t(10)}"]
    if nest:
        cells.append("import nest_asyncio\nnest_asyncio.apply()")
    cells += [textwrap.dedent(c).strip() for c in NOTEBOOK_CELLS]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    NotebookClient(nb, timeout=int(t(60)), kernel_name="python3").execute()
    printed = "".join(
        o.get("text", "")
        for c in nb.cells
        for o in c.get("outputs", [])
        if o["output_type"] == "stream"
    )
    assert "names: ['agent_started'" in printed and "'agent_completed']" in printed
    assert FAST.step_delay == 0.005  # the notebook used the same fast scenario


def run_cells(*cells: str) -> list[dict]:
    """Execute ``cells`` in a real kernel (errors allowed); return every output."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    NotebookClient(nb, timeout=int(t(60)), kernel_name="python3", allow_errors=True).execute()
    return [o for c in nb.cells for o in c.get("outputs", [])]


def test_show_waits_says_what_it_waits_for_and_ends_with_the_total():
    outputs = run_cells(
        f"""
        from netra_ws import connect
        from netra_ws.notebooks import show_waits
        from netra_ws.server import EmbeddedServer
        server = EmbeddedServer().start()
        with show_waits(total_s=0.6):
            async with connect(server.url) as session:
                await session.next(timeout={t(5)})
                await session.quiet(0.6)
        server.stop()
        """
    )
    (view,) = [o for o in outputs if "display_id" in o.get("transient", {}) or "data" in o]
    page = view["data"]["text/html"]  # the final state: updated in place
    assert "✔ waited 0.6 s: 1 quiet window" in page, page


def test_an_interrupt_is_one_line_naming_the_trace(tmp_path):
    outputs = run_cells(
        f"""
        import asyncio
        from netra_ws import connect
        from netra_ws.notebooks import setup_notebook
        from netra_ws.server import EmbeddedServer
        server = EmbeddedServer().start()
        setup_notebook({str(tmp_path)!r})
        """,
        # What Kernel → Interrupt does to a cell awaiting a frame: cancels it.
        f"""
        async with connect(server.url, trace={str(tmp_path / "cut.jsonl")!r}) as session:
            await session.next(timeout={t(5)})
            raise asyncio.CancelledError
        """,
        "server.stop()",
    )
    assert [o["output_type"] for o in outputs] == ["stream"], outputs  # no traceback
    assert outputs[0]["text"] == f"interrupted; 1 frame recorded to {tmp_path / 'cut.jsonl'}\n"
