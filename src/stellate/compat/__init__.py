"""Run code written for Starlette (FastAPI, Starlette-based libraries) on stellate.

:mod:`stellate.compat.starlette` is the import bridge; :mod:`stellate.compat.pytest_plugin`
installs it for a test run. Nothing here is imported by the rest of stellate.
"""
