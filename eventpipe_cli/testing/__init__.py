"""What the tests and the benchmarks (``eventpipe bench``) both need to drive a real pipeline:
``pipeline`` starts a worker and a gateway as processes and waits on them, ``traffic`` makes
CVAT-like request bodies and the Kafka messages the gateway would produce for them.

It ships with eventpipe, not in tests/, because the benchmarks are an installed distribution that
runs outside a checkout's test tree; it runs nothing unless imported.
"""
