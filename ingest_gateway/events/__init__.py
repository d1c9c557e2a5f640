"""The public events API, ``POST /api/events``: the endpoint (``endpoint``), the body it reads,
decodes, validates and enriches (``body``), and the caller's address CVAT records on each event
(``caller_address``)."""
