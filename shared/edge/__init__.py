"""Sentinel's one gRPC edge, used by the API and the executor alike.

Everything that touches gRPC or protobuf on the server side lives here, so neither service imports
the other: `server` builds a server with the interceptors every Sentinel server runs (RPC metrics,
tracing, API keys, request decoding) and opens its port; `status` turns the exception tree into
status codes; `auth` keeps the caller of a request; `convert*` turns protobuf into domain values and
back; `tls` holds server and client credentials; `serving` health and reflection. Business logic
below the edge never imports grpc.
"""
