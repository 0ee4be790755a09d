"""Schedules: a test submitted again and again, by cron or at a fixed interval (issue 13).

    model.py     the domain values: `Schedule`, `ScheduleSpec`, `OverlapPolicy`, `ScheduleRun`
    timing.py    fire times: cron / interval, time zone, jitter (pure computation)
    encoding.py  a schedule's Redis hash, both ways
    rules.py     validation of what a caller sets, naming each field
    store.py     create, read, list, update, pause, resume and delete (scripts/schedule_save.lua)
    firing.py    claiming fire times exactly once and submitting their jobs (scripts/schedule_fire.lua),
                 the scheduler loop every API replica runs, and TriggerSchedule

No protobuf and no grpc here: the API converts at its edge (`shared.edge.convert_schedules`).
"""
