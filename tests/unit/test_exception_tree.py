"""One exception tree (style.md): every exception class the project defines is a
:class:`lez.core.errors.LezError`, but for the few that never leave the module that raises them
or belong to the HTTP layer, listed here with the reason."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from lez.core.errors import LezError

PACKAGES = ("lez", "camera_ingest", "plate_reader", "fidus_adapter", "fines")
OUTSIDE_THE_TREE = {
    "fidus_adapter.registry_http._Retryable": "private: a retry signal inside the client",
    "fidus_adapter.keepalive.TransportFailure": "caught by registry_http alone, which raises "
    "RegistryUnavailable",
    "fines.api.deps.NotAuthenticated": "the HTTP layer's: answered with a redirect or 401",
}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if ".migrations." in info.name:
                continue  # alembic scripts, run by alembic alone
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__
                ):
                    found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_exception_the_project_defines_is_a_lez_error() -> None:
    classes = _exception_classes()
    assert len(classes) > 20, "the walk found the project's exceptions"
    outside = sorted(
        name
        for name, cls in classes.items()
        if not issubclass(cls, LezError) and name not in OUTSIDE_THE_TREE
    )
    assert outside == [], f"exceptions outside the tree: {outside}"


@pytest.mark.parametrize("name", sorted(OUTSIDE_THE_TREE))
def test_the_exceptions_left_outside_still_exist(name: str) -> None:
    assert name in _exception_classes(), f"{name} is gone: drop it from OUTSIDE_THE_TREE"
