"""The always-registered half of the pytest plugin: the ini option, off by default.

Registered through the ``pytest11`` entry point, so it is loaded in every pytest run where
stellate is installed: it does nothing but read ``stellate_starlette_bridge``, and
installs the bridge (as ``-p stellate.compat.pytest_plugin`` does) only when it is true.
"""

from __future__ import annotations

import pytest

INI_OPTION = "stellate_starlette_bridge"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI_OPTION,
        type="bool",
        default=False,
        help="run the suite on stellate: make `import starlette` give stellate's modules",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    if early_config.getini(INI_OPTION):
        from stellate.compat import starlette as bridge

        bridge.install()
        early_config.add_cleanup(bridge.uninstall)
