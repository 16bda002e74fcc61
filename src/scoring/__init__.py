"""Credit scoring and pre-authorization service for public-credit platforms (社会信用体系)."""

__version__ = "0.2.0"
