"""The export flows: CVAT's deprecated ``GET /api/events`` (``deprecated_flow``, its answers in
``deprecated_answers``) and CVAT's requests API (``requests_api``: ``POST /api/events/export``,
``GET /api/requests``, the cancel and the download; a request as CVAT answers it in
``request_answer``, the list's filters and ordering in ``request_filters``). Both take the same
query (``params``), start and serve exports through the same steps (``flow_steps``) and reach
the exporters and the object store through ``jobs`` and ``store``."""
