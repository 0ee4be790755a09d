"""Sentinel API service: the public gRPC surface over the queue."""
