"""The Redis Streams bus of the distributed mode.

Inbound: one stream per shard, consumer group `core`. A shard is worked by one consumer at a time,
held by a lease that consumer renews, so a conversation's messages are handled in order however
many core processes run. Consumers share the shards fairly: each heartbeats and aims at
ceil(shards / live consumers). A new owner first finishes what the shard's previous owner took but
never acknowledged (XAUTOCLAIM once idle for `claim_idle_ms`) and reads nothing new before that.
Outbound: one stream per network, consumer group `senders`, no leases. Events: one pub/sub channel.
Acknowledged entries are deleted, so a stream holds only what is still to be done.
"""

from bridge.bus.redis.bus import MAX_CONNECTIONS, RedisBus
from bridge.bus.redis.streams import INBOUND, Family, outbound

__all__ = ["INBOUND", "MAX_CONNECTIONS", "Family", "RedisBus", "outbound"]
