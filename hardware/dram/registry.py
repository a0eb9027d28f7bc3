"""A name -> factory table for the memory controller's plug-ins (address mappers, schedulers, row policies,
refresh managers), Ramulator 2.0 style: each plug-in registers itself under a name and is chosen by that name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from hardware.errors import HwsimError

T = TypeVar("T")


class Registry(Generic[T]):
    """Plug-ins of one kind (``what``, e.g. "address mapping") by name; lookups are case-insensitive."""

    def __init__(self, what: str, option: str) -> None:
        self.what = what
        self.option = option
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: file ``item`` under ``name``."""

        def deco(item: T) -> T:
            self._items[name.lower()] = item
            return item

        return deco

    def names(self) -> list[str]:
        return list(self._items)

    def get(self, name: str) -> T:
        """The plug-in called ``name``; HwsimError naming the option and the choices when there is none."""
        item = self._items.get(str(name).lower())
        if item is None:
            raise HwsimError(f"{self.option}: unknown {self.what} '{name}' (choose one of {', '.join(self.names())})")
        return item
