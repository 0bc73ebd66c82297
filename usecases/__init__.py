"""Use cases: what the bot and its staff do, each in its own transaction, returning what happened.

Publish a round, the round tick (open, close, remind, invite), queue digests (the tick and on
demand), a resident's results, link an alliance, forget a resident. They read and write through
storage/ (every SQL statement), compute with the pure packages (surveys/, digests/, locales/,
journey/) and hand back reports and message payloads as plain data: no Telegram objects. The
callers above (handlers/, bot/ jobs and CLI, sandbox/) run them off the event loop and present
what they return.
"""
