"""A release that cannot even import: exits 1 at once, as `python -m app` does when a
module it needs is missing."""
import a_module_this_release_forgot  # noqa: F401
