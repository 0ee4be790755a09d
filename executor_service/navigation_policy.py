"""The navigation policy, kept in `shared.navigation_policy` (the API checks webhook targets by it too)."""

from __future__ import annotations

from shared.navigation_policy import (
    AllowRule,
    IpAddress,
    NavigationPolicy,
    Resolver,
    Verdict,
    is_denied_address,
    resolve,
)

__all__ = ["AllowRule", "IpAddress", "NavigationPolicy", "Resolver", "Verdict", "is_denied_address", "resolve"]
