"""The HTTP front door: authenticate, validate, stamp, produce to Kafka, answer.

``POST /api/events`` behaves as CVAT's endpoint, with these choices of our own:

- every error is JSON ``{"error": "...", "field": "events[3].job_id" | null}``, plus ``"index"``
  when one event is at fault; 401 answers carry ``WWW-Authenticate``;
- 400 for a body that does not match the schema, a scope outside ``CLIENT_SCOPES``, a ``payload``
  that is not JSON text, conflicting org parameters; 401 without valid credentials; 403 for an
  unknown organization or one the caller is not a member of (admins may use any); 413 for a body
  over ``max_body_bytes`` (or a message too large for the broker); 415 for a non-JSON body;
  503 with ``Retry-After`` while the broker is unreachable, slow or the producer buffer is full;
- a request with no events answers 201 with an empty list and sends nothing to Kafka (a lone
  ``previous_event`` yields no working time);
- a 201 means the broker acknowledged the request's single message (acks=all). After a 503 the
  message may still arrive, so a client's retry can store a request twice (at-least-once).

Layout: a small HTTP core beside one sub-package per concept. Each imports the core, its own
sub-package and those listed before it, never those after (tests/unit/test_layers.py checks it,
and that no modules import each other in a circle):

- core: ``errors`` (JSON errors), ``params`` (parameter parsers), ``metrics``, ``producer``
  (Kafka), ``health`` (probes), ``request_middleware`` (request ids and counters),
  ``http_protocol`` (uvicorn's protocol with a head deadline), ``ttl_cache`` and
  ``single_flight`` (caches), ``operations`` (how a handler declares its OpenAPI operation);
- ``limits``: the tenant rate limiter and the login throttle, in memory or in Redis;
- ``identity``: who is calling, in which organization, what they may do;
- ``events``: ``POST /api/events``;
- ``exports``: both export flows and the requests API;
- ``intake``: the intake for CVAT's server, on its own port;
- the assembly: ``routes`` (every route and its handler), ``openapi`` (the document, assembled
  from the routes), ``app`` (the app, its services and lifespan), ``server`` (uvicorn).
"""
