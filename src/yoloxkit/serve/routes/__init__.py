"""The HTTP routes, one router per concern: ``detect`` (``POST /v1/detect``), ``service``
(``GET /v1/model``, ``GET /healthz``) and ``page`` (the web page at ``/`` and ``/static``)."""
