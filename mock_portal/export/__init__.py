"""Machine-readable descriptions of every Bitrix24 event the suite knows: OpenAPI 3.1 and AsyncAPI 3.0.

::

    from mock_portal.export import asyncapi_document, openapi_document

    openapi_document()   # OpenAPI 3.1: one `webhooks` entry per event, form body and JSON view
    asyncapi_document()  # AsyncAPI 3.0: one channel, operation and message per event

Both are built from ``schemas/`` (bundled into ``components/schemas``, see :mod:`mock_portal.export._bundle`)
and the catalogue's doc pages, with one example per event built by :func:`mock_portal.events.build_event`
(seeded, so the output is the same on every run; secrets masked). No body any portal sends is JSON: the form
encoding is described by the vendor extension ``x-b24-php-brackets`` (:data:`PHP_BRACKETS`).
"""

from __future__ import annotations

from mock_portal.export._documents import PHP_BRACKETS, asyncapi_document, openapi_document

__all__ = ["PHP_BRACKETS", "asyncapi_document", "openapi_document"]
