"""eventpipe: the shared kernel (settings, contracts, CLI, embedded stack) of the pipeline."""
