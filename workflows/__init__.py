"""The REMS domain, pure Python.

Nothing here imports flask, sqlmodel, sqlalchemy, rq, redis or marshmallow:
the functions and state machines take plain values and an explicit ``now``
and return plain values, so they are unit-tested without I/O and replayable.
"""
