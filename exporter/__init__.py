"""The exporter: turns an export request into a CSV object in the object store.

Read top to bottom: ``consumer`` takes requests from Kafka, ``export_job`` runs one, ``query``
builds its ClickHouse query, ``csv_stream`` streams the result into the object store
(``eventpipe.stores``) and status records track progress; ``sweeper`` expires old exports.
"""
