"""The console's HTTP layer: dependencies (login, roles), JSON API routes and pages.

HTTP errors are raised only here; the domain modules (``fines.review``, ``fines.auth``) raise
``lez.core.errors`` subclasses that are mapped to status codes in :mod:`fines.api.deps`.
"""
