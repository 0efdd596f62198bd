"""Delivery, as one seam: consumption, batching, acknowledgement, the offset ledger, commits.

    kafka.KafkaRuntime   one consumer per worker, the fetch loop, commits, rebalances, stop
    ledger.OffsetLedger  which input offsets may be committed (fetch batches settle in order)
    runner.GroupRunner   one task per stage group: batch -> processors -> outputs -> settle
    groups               stage groups, fused or single (``fusion:`` in topology.yaml)
    sink                 where outputs go: the Kafka producer
    tables               changelog-backed tables for the stages' remembered decisions
    memory.MemoryRuntime the same groups with records handed over in memory (no broker)
    safety               retry, isolate and dead-letter a failing batch
    patches              every patch of a library's private API, version-checked

Stage processors never see any of it: ``Record``s in, ``Output``s out (pipeline.stages.base).
"""
