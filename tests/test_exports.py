"""The public surface is curated: pin it so changes are deliberate."""

from __future__ import annotations

import importlib

import pytest

import netra_ws

MODULES = [
    "netra_ws",
    "netra_ws.events",
    "netra_ws.trace",
    "netra_ws.client",
    "netra_ws.sync",
    "netra_ws.errors",
    "netra_ws.redact",
    "netra_ws.tokens",
    "netra_ws.server",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_unique(name):
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ lists missing {attr}"


def test_every_exception_derives_from_the_base():
    from netra_ws import errors

    for attr in errors.__all__:
        assert issubclass(getattr(errors, attr), netra_ws.NetraWsError)


def test_requirements_match_pyproject():
    import pathlib

    import tomllib

    root = pathlib.Path(__file__).resolve().parent.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    listed = [
        line.split("#")[0].strip()
        for line in (root / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert listed == declared
