"""Alerts: signed webhooks when a check's outcome changes, delivered at least once.

    events stream ──XREADGROUP `alerts`──► consumer.py ──alert_outcome.lua──► delivery hashes + due zset
    (every job's end,                      (each replica; XAUTOCLAIM of      (per owner: the last outcome,
     written by the Lua scripts)            stale entries; XACK after)        compared and updated atomically)
                                                                                      │
    receiver ◄──POST, Sentinel-Signature── sender.py ◄── dispatcher.py ◄──alert_claim.lua (lease)──┘
                                           (guarded,     (each replica;    alert_record.lua: delivered,
                                            no redirects) backoff)          due again, or failed

- `rules`: tenant-wide rules (a tag and its notifications), stored with sealed secrets.
- `outcomes`: which events a job's end causes, and applying one entry to its owners.
- `deliveries`: the delivery records, their claim under a lease, their answers, ListDeliveries.
- `signing`: the `Sentinel-Signature` header (`t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">`).
- `sender`: one HTTP attempt, its target checked by the navigation policy first.
- `urls`: a webhook URL sealed at rest (with a key) and only ever shown masked.
- `consumer`, `dispatcher`: the two loops each API replica runs; `service` starts and stops them.

Plain asyncio and Redis: nothing here imports grpc or protobuf.
"""
