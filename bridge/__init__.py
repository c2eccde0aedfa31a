"""clearhours bridge: time-tracker data in, redacted client portals out."""

__version__ = "0.1.0"
