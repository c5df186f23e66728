"""Names of the message headers function-runner adds to the tasks it publishes."""

from __future__ import annotations

#: The attempt number of this execution (1 when absent).
ATTEMPT = "fr_attempt"
#: The id of the scheduled run (retry or released wait) this message executes.
RUN = "fr_run"
#: The dispatch token that identifies the one message allowed to execute the run.
TOKEN = "fr_token"
#: The id of the dead letter this task replays.
REPLAY_OF = "fr_replay_of"

#: Marks a copy of a message the broker lost after its failure was kept in Redis (the database was
#: unreachable): the copy records that failure instead of running the body (see ``unrecorded``).
KEPT = "fr_kept"

#: Every header of ours; they are stripped from the headers recorded for replay.
ALL = frozenset({ATTEMPT, RUN, TOKEN, REPLAY_OF, KEPT})

#: Headers a transport adds on its own (kombu's Redis transport marks restored messages); never
#: recorded as the task's headers, so a replay does not look like a redelivery.
TRANSPORT = frozenset({"redelivered"})
