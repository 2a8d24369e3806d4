"""Rumour Tracker: pairs rumours in news feeds with the official clarifications that answer them."""

__version__ = "0.1.0"
