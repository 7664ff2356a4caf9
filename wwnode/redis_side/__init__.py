"""Redis, as the node uses it: leases, fenced writes, session states and the keys the tools read.

- ``keys``: every Redis key name of the contract, one table the node and the tools both read.
- ``conn``: which Redis: ``REDIS_URL``'s server, or the master Redis Sentinel names.
- ``store``: this node's Redis: fenced writes kept while Redis is away, send records, lost keys.
- ``leases``: claims, renewals and fences, and the replica wait that makes them last a failover.
- ``lua``: the Lua scripts behind the leases and fenced writes, each one step in Redis.

Named for its side of the node, not ``redis``: a package of that name would
read as the redis library.  Import from the modules themselves: this file
imports nothing.
"""
