"""The intake for CVAT's server, on a port of its own: the app (``app``) and its uvicorn server
(``server``), a batch's decoding (``batch``) and Kafka records (``records``), their delivery
(``delivery``) through a spool on disk while the broker is away (``spool``), and the intake's
OpenAPI document (``openapi``)."""
