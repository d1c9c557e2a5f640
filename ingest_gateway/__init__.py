"""The HTTP front door: authenticate, validate, stamp, produce to Kafka, answer."""
