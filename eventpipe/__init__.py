"""eventpipe: the shared kernel of the pipeline (settings, contracts, stores, logging, metrics).

It imports none of the services; ``eventpipe_cli`` starts and wires them."""
