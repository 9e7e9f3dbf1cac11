"""What a client and a validator agree on, to the byte (docs/protocol.md): the canonical
and strict msgpack codec, the envelope's wire form and a transaction's id, the read
token's text and signed bytes, and the limits both sides hold to.

A leaf: it imports nothing of the project, does no IO, reads no clock and draws no
randomness, so the client (client/) and the server (node/, gateway/) can both build on it
and the client never loads the server to speak its format. Checking an envelope (the
door, node/envelope.py) and a token (gateway/auth.py) stays with the server.
"""
