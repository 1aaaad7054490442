"""WebSub (W3C Recommendation, 2018): feedsvc's built-in hub.

- ``subscribe.py``: what a subscription request must say (§5.1), decided
  without I/O; the web layer answers 202 and queues it in the store.
- ``callbacks.py``: the only way the hub sends to a subscriber's URL, with the
  address checks, deadline and size limits that keep it from being a weapon.
- ``dispatch.py``: the watcher process's side: verification of intent (§5.3),
  content distribution of changed feeds (§7, signed per §8), pings of external
  hubs, retries with backoff, leases ending. The queue itself is ``store/hub.py``.

See docs/websub.md for the rules as an operator and a subscriber see them.
"""
