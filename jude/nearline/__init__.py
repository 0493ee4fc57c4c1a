"""The nearline embedding updater: change streams -> template -> change detection -> inference -> stores.

- ``events``: the change event (the contract every source and processor shares) and its text.
- ``hashing``: the content hash that lets the processor skip unchanged entities.
- ``sources``: Redis Streams and Kafka behind one small interface.
- ``inference``: the model, over gRPC (``jude serve``) or in-process, behind another.
- ``processor``: one micro-batch: parse, template, hash, embed what changed, write both stores, acknowledge.
- ``worker``: the loop around it, with metrics, probes and a clean stop (``jude nearline run``).
- ``publish``: change events from files or the synthetic marketplace onto the streams (``jude nearline publish``).

The stores it writes live in ``jude.stores`` (online: Redis; offline: Delta Lake history).
"""
