"""The input topic a producer writes a submission to: its lane, chosen before ingest.

With ``lanes.submit`` in ``topology.yaml`` the input topic is split by lane
(``pipeline.topology.lanes``) and ingest takes its passes by lane, so an urgent submission
overtakes the backlog that forms in front of ingest under overload.  The producer chooses
the lane, from the submission alone, with the topology's own scorer (``priority.scorer``:
the ONNX model, or the transparent rule) and none of a worker's signals:

    IntentSubmission ─► as an intent with its whole window left, no market volatility,
                        fill rate 1, queue depth 0 ─► IntentScorer.score (a batch: one call)
                     ─► priority 1..10 ─► lane ─► <submit>.<lane>, e.g. sep.intents.submitted.fast
    no lanes (or no ``submit``), or a submission the scorer cannot score: the plain topic

The scorer itself, not the transparent rule (``score_intent``) it falls back to: measured
on ``sep bench overload``'s intents, the rule puts every 10-minute ADAPTIVE intent (28 % of
the routine ones) in the fast lane where the model puts it in bulk (the model was trained
on ``rule.py``, which weighs windows in log-time); the model at the producer agreed with
the model at ingest on all of them (88 % of ``pipeline.samples``' random submissions: a
deep queue at ingest weighs short windows up).  It costs ~50 µs a submission in a batch,
~120 µs alone (the rule ~27 µs), on a busy 2-core machine.

Ingest scores every intent again, with the worker's signals, for the lane it waits in
next: the producer's label decides only the order in front of ingest (a producer that
labels everything urgent cannot jump the chain's queue, only ingest's).

One strategy's submissions may go to different lanes.  That is safe for dedupe, which is a
claim in one store shared by every ingest worker and ``POST /intents``
(``pipeline.store.dedupe``), not partition-local state: whichever copy ingest reaches
first owns the key, the other is dropped as its duplicate.  (The lane topics are keyed by
strategy id like the plain topic, with its partition count, checked at worker start.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from pipeline.client import INPUT_TOPIC
from pipeline.models.intent import Intent, IntentSubmission
from pipeline.priority.scoring import IntentScorer
from pipeline.topology.models import Topology


def as_intent(submission: IntentSubmission) -> Intent:
    """What the scorer sees of a submission: an intent with no id yet and no time of its
    own, so its whole window is left."""
    parts = {k: v for k, v in submission.__dict__.items() if v is not None}
    return Intent.model_construct(id="intent-unassigned", **parts)


class SubmitLanes:
    """Which input topic each submission goes to, for one topology."""

    def __init__(self, topology: Topology | None) -> None:
        spec = topology.lanes if topology is not None else None
        self._lanes = spec if spec is not None and spec.submit is not None else None
        self._scorer = (
            IntentScorer(topology) if topology is not None and self._lanes is not None else None
        )
        self.plain: str = INPUT_TOPIC
        if self._lanes is not None and self._lanes.submit is not None:
            self.plain = self._lanes.submit
        """The unlabelled input topic (what any producer may write)."""

    @property
    def enabled(self) -> bool:
        """Whether the input topic is split by lane."""
        return self._lanes is not None

    def topics_of(self, submissions: Sequence[IntentSubmission]) -> list[str]:
        """Each submission's topic, the batch scored in one call."""
        lanes, scorer = self._lanes, self._scorer
        if lanes is None or scorer is None or not submissions:
            return [self.plain] * len(submissions)
        try:
            scored = scorer.score([as_intent(s) for s in submissions], 0)
        except (ValueError, ArithmeticError):  # one the scorer cannot: each on its own
            if len(submissions) == 1:
                return [self.plain]  # ingest scores it, or rejects it with the reason
            return [self.topics_of([s])[0] for s in submissions]
        return [lanes.submit_topic_of(p.lane) for p in scored]

    def topic_of(self, submission: IntentSubmission) -> str:
        return self.topics_of([submission])[0]

    def topic_of_body(self, body: Mapping[str, Any]) -> str:
        """The topic of a submission as JSON (wire names); one that is not a valid
        submission goes to the plain topic, where ingest rejects it with the reason."""
        if self._lanes is None:
            return self.plain
        try:
            submission = IntentSubmission.model_validate(body)
        except ValidationError:
            return self.plain
        return self.topic_of(submission)
