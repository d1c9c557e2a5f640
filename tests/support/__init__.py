"""What the tests share beyond fixtures: a clock they move by hand, and (``pipeline``,
``traffic``) the process harness and request builders the benchmarks use too."""
