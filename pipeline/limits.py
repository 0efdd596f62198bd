"""Every size limit of the platform, in one place, consistent from producer to broker.

A record is accepted at the edge only if it fits ``MAX_INPUT_RECORD_BYTES``; everything we
produce ourselves (events, rejections, dead letters) is bounded so that it fits
``MAX_PRODUCED_RECORD_BYTES``, which is below the producer's request limit, which is below
what the broker and every topic accept.  A rejection of a hostile record therefore can never
be bigger than the broker allows (a 1,000,000-byte record's dead-letter copy used to exceed the
producer's limit and wedge its partition).

    input record  <= MAX_INPUT_RECORD_BYTES            (larger: rejected, prefix dead-lettered)
    our records   <= MAX_PRODUCED_RECORD_BYTES
                  <  PRODUCER_MAX_REQUEST_BYTES         (aiokafka ``max_request_size``)
                  <= BROKER_MAX_MESSAGE_BYTES           (broker ``message.max.bytes``,
                                                         topic ``max.message.bytes``)
    consumer      fetches up to CONSUMER_MAX_PARTITION_FETCH_BYTES per partition, which is
                  at least the broker's limit, so no valid batch is ever too big to fetch.
"""

from __future__ import annotations

MAX_INPUT_RECORD_BYTES = 64 * 1024
"""The largest submission ingest parses; a larger one is rejected with its size."""

DEAD_LETTER_PREFIX_BYTES = 16 * 1024
"""A dead letter keeps at most this much of the raw record, plus its size and SHA-256."""

MAX_FIELD_ERRORS = 20
"""A rejection lists at most this many field errors and says how many more there were."""

MAX_FIELD_ERROR_CHARS = 512
"""A field error's path and message are each cut to this many characters."""

MAX_REASON_CHARS = 2048
"""A rejection's or dead letter's one-line reason is cut to this many characters (it quotes
at most three field errors, and the runtime's reasons quote an exception's repr)."""

MAX_PRODUCED_RECORD_BYTES = 512 * 1024
"""No record we produce is larger (events, rejections and dead letters are bounded above)."""

PRODUCER_MAX_REQUEST_BYTES = 1024 * 1024
"""aiokafka's ``max_request_size`` for every producer of ours."""

BROKER_MAX_MESSAGE_BYTES = 2 * 1024 * 1024
"""``message.max.bytes`` of the embedded broker and ``max.message.bytes`` of our topics:
other producers may send records up to this size, and ingest must still read them to reject
them (a record above the broker's limit never reaches us; the producer gets the error)."""

CONSUMER_MAX_PARTITION_FETCH_BYTES = BROKER_MAX_MESSAGE_BYTES + 64 * 1024
"""Per-partition fetch size: above the broker's limit, so the largest batch always fits."""

CONSUMER_FETCH_MAX_BYTES = 16 * 1024 * 1024
"""Upper bound of one fetch response across partitions."""

assert MAX_INPUT_RECORD_BYTES < MAX_PRODUCED_RECORD_BYTES < PRODUCER_MAX_REQUEST_BYTES
assert PRODUCER_MAX_REQUEST_BYTES <= BROKER_MAX_MESSAGE_BYTES
assert CONSUMER_MAX_PARTITION_FETCH_BYTES > BROKER_MAX_MESSAGE_BYTES
