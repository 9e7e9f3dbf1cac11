"""Lost phones: member.recover (delayed by an admin, at once by governance),
recovery.cancel and recovery.complete (docs/governance.md, "Recoveries of lost keys").

Rules:
- an admin may open a recovery of a citizen or merchant alone; it freezes the old key
  at once (`frozen`: it signs nothing) and completes only at or after `effective`, the
  block time plus the constitution's delay in force when it opened;
- any steward or admin may cancel it (the old key cannot: it is frozen); after a
  steward's cancel only governance may recover that key;
- one open recovery per key; its new key can be neither registered nor named by
  another recovery while it is open;
- governance recovers at once and closes an open recovery of the same key; so does a
  revocation of the old key.
"""
from __future__ import annotations

from . import constitution, members
from . import state as st
from .context import Context
from .errors import Reject


def open_recovery(c: Context, signer: bytes, args: dict) -> list:
    view, old, new = c.view, args["old"], args["new"]
    record = st.get_member(view, old)
    if record is None:
        raise Reject("not_found")
    members.require_unused(view, new)
    if ("recovered_to" in record or view.get(st.RECOVERY + old) is not None
            or record.get("steward_cancelled")):
        raise Reject("invalid_state")
    effective = c.time_ms + constitution.get(view)["recovery_delay_ms"]
    view.put(st.RECOVERY + old, st.pack({"new": new, "effective": effective,
                                         "by": signer, "height": c.height}))
    view.put(st.RECOVERY_TO + new, old)
    record["frozen"] = True
    st.put_member(view, old, record)
    return [{"kind": "member.recovery_opened", "old": old, "new": new,
             "effective": effective}]


def cancel(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    old = args["old"]
    if c.view.get(st.RECOVERY + old) is None:
        raise Reject("not_found")
    record = members.close_recovery(c.view, old)
    if member["role"] == "steward":
        record["steward_cancelled"] = True
        st.put_member(c.view, old, record)
    return [{"kind": "member.recovery_cancelled", "old": old, "by": signer}]


def complete(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, old = c.view, args["old"]
    raw = view.get(st.RECOVERY + old)
    if raw is None:
        raise Reject("not_found")
    recovery = st.unpack(raw)
    if c.time_ms < recovery["effective"]:
        raise Reject("invalid_state")
    record = members.close_recovery(view, old)
    return [members.move(view, old, recovery["new"], record)]


def recover_now(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    """A governed member.recover: at once, closing an admin's open recovery of `old`."""
    view, old, new = c.view, args["old"], args["new"]
    record = st.get_member(view, old)
    if record is None:
        raise Reject("not_found")
    events = []
    if view.get(st.RECOVERY + old) is not None:
        record = members.close_recovery(view, old)
        events.append({"kind": "member.recovery_cancelled", "old": old, "by": "governance"})
    members.require_unused(view, new)
    if "recovered_to" in record:
        raise Reject("invalid_state")
    if (record["role"] == "steward"
            and record["organisation"] not in constitution.get(view)["organisations"]):
        raise Reject("invalid_state")        # its organisation was removed
    return events + [members.move(view, old, new, record)]


def open_of(state, old: bytes) -> dict | None:
    """The open recovery of a key: {new, effective, by, height}, or None (a read)."""
    raw = state.get(st.RECOVERY + old)
    return None if raw is None else st.unpack(raw)
