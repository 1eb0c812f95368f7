"""Shared core of lez: settings, event schemas, the Kafka bus and the CLI."""

__version__ = "0.1.0"
