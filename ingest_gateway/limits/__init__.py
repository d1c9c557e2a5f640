"""The gateway's limits: the tenant rate limiter and the login throttle.

One interface (``interface``), two backends: ``in_memory``, each process on its own, and
``in_redis``, shared by every process and replica through a Redis client with an outage policy
(``redis_client``)."""
