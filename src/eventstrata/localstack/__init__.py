"""The local stack: real Apache Kafka (KRaft, jars from Maven Central) and real redis-server /
Redis Cluster started as child processes on free loopback ports, plus ``DevStack`` behind
``eventstrata dev up/down/status``. The pytest fixtures use the same launchers.
"""

from __future__ import annotations

from eventstrata.localstack.proc import StackError

__all__ = ["StackError"]
