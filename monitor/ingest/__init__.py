"""Ingest: transports (memory, file, Kafka) and the decoding of raw messages."""
