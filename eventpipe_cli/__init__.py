"""The layer that starts and wires eventpipe's processes: the ``eventpipe`` command, the worker
that hosts the processor and the exporter, ``eventpipe dev`` with its supervisor and embedded
broker. It may import every package; ``eventpipe`` (the kernel) and the three services never
import it (tests/unit/test_layers.py)."""
