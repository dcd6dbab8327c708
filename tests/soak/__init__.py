"""The soak test: ``python -m tests.soak`` (``tox -e soak``), issue 20.

Our server runs as its own process (``python -m rtmp serve`` on 127.0.0.1 and a free port)
while :mod:`tests.soak.load` drives it for a bounded time with :class:`rtmp.Client`
publishers and players that join and leave: players that keep up, players that leave
early, players that drop their connection and reconnect, and players that never read.
:mod:`tests.soak.monitor` samples the server's RSS, threads, descriptors and CPU from
``/proc`` every few seconds, prints one table row per sample, and judges the run:

* a player that keeps up must get every frame the publisher sent from the first keyframe
  it received (the GOP cache's, for a late joiner) to the publisher's end;
* RSS, threads and descriptors must not grow over the run, and threads and descriptors
  must come back to their value before the first client once every client has left.

The default run lasts 10 minutes; ``--short`` (or ``--duration S``) is the CI-sized form,
run by ``tests/test_soak.py`` in the normal suite.
"""
