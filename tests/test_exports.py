"""The public surface is curated: pin it so changes are deliberate."""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import pkgutil
import re
import tomllib
from typing import Any

import pytest

import netra_ws

MODULES = [
    "netra_ws",
    "netra_ws.analysis",
    "netra_ws.capture",
    "netra_ws.client",
    "netra_ws.console",
    "netra_ws.contract",
    "netra_ws.demo",
    "netra_ws.browse",
    "netra_ws.diff",
    "netra_ws.errors",
    "netra_ws.events",
    "netra_ws.expect",
    "netra_ws.har",
    "netra_ws.live",
    "netra_ws.plots",
    "netra_ws.probes",
    "netra_ws.redact",
    "netra_ws.report",
    "netra_ws.server",
    "netra_ws.sync",
    "netra_ws.target",
    "netra_ws.tokens",
    "netra_ws.trace",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_unique(name):
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ lists missing {attr}"


# Adding or removing a public name is a decision: update this list with it.
PUBLIC = [
    "AGENT_EVENTS",
    "AuthenticationFailed",
    "CRITICAL_EVENTS",
    "CheckResult",
    "Checks",
    "Collected",
    "ConnectFailed",
    "ConnectRefused",
    "EmbeddedServer",
    "Event",
    "FrameParseError",
    "Handshake",
    "HandshakeRejected",
    "HarFormatError",
    "InvalidToken",
    "Limits",
    "NetraWsError",
    "ProbeReport",
    "ProbeResult",
    "Profile",
    "Received",
    "RedactionError",
    "Redactor",
    "ReferenceServer",
    "Report",
    "Scenario",
    "ServerConfig",
    "Session",
    "SessionClosed",
    "TERMINAL_EVENTS",
    "ToolCall",
    "Trace",
    "TraceBudgetReached",
    "TraceDiff",
    "TraceFormatError",
    "TraceWarning",
    "TraceWriter",
    "WaitTimeout",
    "assign_runs",
    "build_report",
    "capture_runs",
    "check_run",
    "compare_runs",
    "connect",
    "diff_traces",
    "event_gaps",
    "export_har",
    "find_stalls",
    "import_har",
    "iter_trace",
    "load_profile",
    "load_traces",
    "mint_token",
    "normalize",
    "phase_durations",
    "probe_auth",
    "probe_connection",
    "probe_negative",
    "probe_workflow",
    "read_parquet",
    "read_trace",
    "register_secret",
    "run_probes",
    "run_stats",
    "summarize_runs",
]


def test_top_level_names_are_pinned():
    assert sorted(netra_ws.__all__) == PUBLIC


def test_each_top_level_name_is_its_modules_object():
    for module, names in netra_ws._EXPORTS.items():
        for name in names:
            assert getattr(netra_ws, name) is getattr(
                importlib.import_module(f"netra_ws.{module}"), name
            )
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        netra_ws.nope  # noqa: B018


def test_the_cli_and_the_server_start_without_pandas():
    """`python -m netra_ws serve` must not pay for pandas, pyarrow and matplotlib (2 s)."""
    import subprocess
    import sys

    code = (
        "import sys, netra_ws.cli, netra_ws.server\n"
        "from netra_ws import EmbeddedServer, mint_token\n"
        "heavy = {'pandas', 'pyarrow', 'matplotlib'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# --- the exception tree ------------------------------------------------------------------


def _defined_classes() -> list[type[BaseException]]:
    """Every exception class defined in a netra_ws module, found by importing them all."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(netra_ws.__path__, "netra_ws."):
        if info.name.endswith(".__main__"):
            continue  # importing it runs the CLI (or prints the locustfile's path)
        if info.name == "netra_ws.load.locustfile":
            continue  # importing Locust monkey-patches this process (gevent); no exceptions
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found[cls.__qualname__] = cls
    return list(found.values())


def _drawn_trees(doc: str) -> dict[str, str | None]:
    """The trees drawn in ``doc``: each class name -> the name drawn as its parent."""
    parents: dict[str, str | None] = {}
    path: list[str] = []  # the names on the way down to the current line
    for line in doc.splitlines():
        root = re.fullmatch(r" {4}(\w+)", line)
        child = re.match(r" {4}((?:│   | {4})*)[├└]── (\w+)", line)
        if root:
            path = [root[1]]
            parents[root[1]] = None
        elif child:
            depth = len(child[1]) // 4 + 1
            path[depth:] = [child[2]]
            parents[child[2]] = path[depth - 1]
    return parents


def test_every_exception_class_is_under_the_base_and_drawn_where_it_is():
    """errors.py draws the whole tree; each class of the package sits where it is drawn.

    Warnings are issued, not raised, so they stay UserWarnings; they are drawn apart.
    """
    from netra_ws import errors

    classes = _defined_classes()
    assert len(classes) >= 12  # the walk found the package's classes, not nothing
    exported = [getattr(netra_ws, name) for name in netra_ws.__all__]
    errors_ = {c for c in [*classes, *exported] if isinstance(c, type) and issubclass(c, Exception)}
    for cls in errors_:
        if not issubclass(cls, Warning):
            assert issubclass(cls, errors.NetraWsError), f"{cls.__module__}.{cls.__qualname__}"
    drawn = _drawn_trees(errors.__doc__ or "")
    assert [name for name, parent in drawn.items() if parent is None] == [
        "NetraWsError",
        "UserWarning",
    ]
    assert set(drawn) - {"UserWarning"} == {c.__name__ for c in errors_}
    for cls in errors_ - {errors.NetraWsError}:
        bases = {base.__name__ for base in cls.__bases__}
        assert drawn[cls.__name__] in bases, f"{cls.__name__} is drawn under the wrong parent"


# --- the project's files agree with each other ---------------------------------------------

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements(name: str) -> list[str]:
    """The entries of a requirements file, without comments and ``-r`` includes."""
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    entries = [line.split("#")[0].strip() for line in lines]
    return [entry for entry in entries if entry and not entry.startswith("-r")]


def test_requirements_match_pyproject():
    assert _requirements("requirements.txt") == PYPROJECT["project"]["dependencies"]
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert _requirements("requirements-dev.txt") == dev


def _strict_override() -> dict[str, Any]:
    (strict,) = [o for o in PYPROJECT["tool"]["mypy"]["overrides"] if "warn_return_any" in o]
    return strict


def test_the_pure_modules_get_every_flag_of_mypy_strict():
    """`strict = true` in an override would make every module strict: mypy applies it to the
    whole run. So the flags are spelled out; none of --strict's may be missing."""
    from mypy.main import define_options
    from mypy.options import PER_MODULE_OPTIONS

    config = PYPROJECT["tool"]["mypy"]
    strict = _strict_override()
    assert all("strict" not in override for override in config["overrides"])
    _, _, strict_flags = define_options()
    assert strict_flags  # mypy still says which flags --strict sets
    for flag, value in strict_flags:
        where = strict if flag in PER_MODULE_OPTIONS else config
        assert where.get(flag) == value, flag


def test_the_doctests_run_over_the_modules_mypy_checks_strictly():
    """The Makefile's PURE_MODULES (docstring examples) and the strict mypy override list
    the same modules."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    listed = re.search(
        r"^PURE_MODULES := \$\(wildcard \$\(addprefix netra_ws/,(.*?)\)\)", makefile, re.M | re.S
    )
    assert listed is not None
    paths = listed[1].replace("\\", " ").split()
    modules = {"netra_ws." + p.removesuffix(".py").replace("/", ".") for p in paths}
    assert modules == set(_strict_override()["module"])


# --- test modules ----------------------------------------------------------------------------


def _imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_test_module_imports_another():
    """Shared helpers live in tests/conftest.py (fixtures) and tests/helpers/; a test module
    imported by another one runs its tests twice under two names, and couples the suites."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in _imported_modules(path)
            if name.split(".")[-1].startswith("test_") or name.startswith("tests.test_")
        )
        for path in (ROOT / "tests").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}
