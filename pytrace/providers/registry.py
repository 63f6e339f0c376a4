"""The list of probe providers and name/alias lookup."""

from __future__ import annotations

from .base import Provider
from .fentry import FentryProvider, FexitProvider
from .iter import IterProvider
from .kprobe import KprobeProvider, KretprobeProvider
from .profile import IntervalProvider, ProfileProvider
from .rawtracepoint import RawTracepointProvider
from .software import HardwareProvider, SoftwareProvider
from .special import BeginProvider, EndProvider
from .tracepoint import TracepointProvider
from .uprobe import UprobeProvider, UretprobeProvider
from .usdt import UsdtProvider
from .watchpoint import AsyncWatchpointProvider, WatchpointProvider

PROVIDER_CLASSES: tuple[type[Provider], ...] = (
    BeginProvider, EndProvider, TracepointProvider, RawTracepointProvider, KprobeProvider,
    KretprobeProvider, UprobeProvider, UretprobeProvider, UsdtProvider, FentryProvider, FexitProvider,
    ProfileProvider, IntervalProvider, SoftwareProvider, HardwareProvider, WatchpointProvider,
    AsyncWatchpointProvider, IterProvider,
)


class ProviderRegistry:
    """Providers by canonical name and alias."""

    def __init__(self) -> None:
        self.providers: list[Provider] = [cls() for cls in PROVIDER_CLASSES]
        self._by_name: dict[str, Provider] = {}
        for p in self.providers:
            self._by_name[p.name] = p
            for a in p.aliases:
                self._by_name[a] = p

    def lookup(self, name: str) -> Provider | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)
