"""`frugal run`'s event loop: uvloop where it is installed, asyncio's own where it is not."""

from __future__ import annotations

import builtins
import sys

import pytest

from bot.commands.run import _loop_factory


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop is not installed on Windows")
def test_frugal_run_serves_on_uvloop():
    import uvloop

    factory = _loop_factory()

    assert factory is uvloop.new_event_loop
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_without_uvloop_asyncio_s_own_loop_is_used(monkeypatch):
    real_import = builtins.__import__

    def no_uvloop(name, *args, **kwargs):
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvloop)

    assert _loop_factory() is None
