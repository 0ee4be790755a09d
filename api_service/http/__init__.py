"""The API's HTTP/JSON front door (REST + Server-Sent Events + the dashboard's files).

Served by the API process next to gRPC, on the same event loop, over the same domain functions,
keys, roles and limits: `server` (app, middlewares, listener), `auth` (route → role), `routes_*`
(thin handlers), `parsing` (requests in), `views` (JSON out), `envelope` (answers and status codes),
`sse` (event streams), `openapi` (the document of it all). No rule of the domain lives here.
"""
