"""Use cases: what buurtstem does, each in one transaction, returning what happened as data.

A resident's update (resident.py: the journey's decision, stored: answers, consent, forget),
publish a round, the round tick (open, close, remind, invite), queue digests (the tick and on
demand), a resident's /results, link an alliance. They read and write through storage/ (every
SQL statement), compute with the pure packages (surveys/, digests/, locales/, journey/) and hand
back reports and message payloads as plain data: no Telegram objects. The callers above
(handlers/, bot/ jobs and CLI, sandbox/) run them off the event loop and present what they
return.
"""
