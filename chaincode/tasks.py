"""The task lifecycle: task.post/claim/withdraw/submit/approve/reject/cancel.

Rules (docs/chaincode.md, "Caps and reservations", has the caps):
- a task's slots are taken by its open (unexpired), submitted and approved claims; the
  task record counts them in `taken`. Expired open claims are never subtracted: once the
  deadline has passed nobody can claim, so the count is only read while none has expired;
- a citizen holds at most one unresolved (open or submitted) claim per task, may claim
  again after a rejection, withdrawal, release or expiry, never after an approval;
- an unsubmitted claim expires when the block time reaches the task's deadline: it then
  reserves nothing (see caps.py) and cannot be submitted or withdrawn;
- cancel stops new claims and releases open claims; submitted work stays approvable;
- a claim reserves the reward against the caps; an approval mints it.

Claim states: open, submitted, approved, withdrawn, rejected, released (by a cancel).
"""
from __future__ import annotations

from . import caps
from . import state as st
from .context import Context
from .errors import Reject

UNRESOLVED = ("open", "submitted")


def _task(view, task: str) -> dict:
    raw = view.get(st.task_key(task))
    if raw is None:
        raise Reject("not_found")
    return st.unpack(raw)


def _claim(view, task: str, citizen: bytes) -> dict | None:
    raw = view.get(st.claim_key(task, citizen))
    return None if raw is None else st.unpack(raw)


def post(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, task = c.view, args["task"]
    if view.get(st.task_key(task)) is not None:
        raise Reject("exists")
    policy = caps.require_policy(view, c.year)
    if args["deadline"] <= c.time_ms:
        raise Reject("deadline_passed")
    caps.check_hourly(policy, "21plus", args["reward"], args["minutes"])
    fields = ("title", "area", "domain", "reward", "minutes", "slots", "deadline")
    record = {name: args[name] for name in fields}
    view.put(st.task_key(task), st.pack(dict(record, cancelled=False, taken=0)))
    return [dict(record, kind="task.posted", task=task)]


def claim(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, task_id = c.view, args["task"]
    task = _task(view, task_id)
    deadline, reward = task["deadline"], task["reward"]
    previous = _claim(view, task_id, signer)
    if previous is not None:
        state = previous["state"]
        if state == "submitted" or (state == "open" and deadline > c.time_ms):
            raise Reject("exists")
        if state == "approved":
            raise Reject("invalid_state")
    if task["cancelled"]:
        raise Reject("invalid_state")
    policy = caps.require_policy(view, c.year)
    if c.time_ms >= deadline:
        raise Reject("deadline_passed")
    if task["taken"] >= task["slots"]:
        raise Reject("task_full")
    caps.check_hourly(policy, member["age_band"], reward, task["minutes"])
    record = caps.load_reservations(view, signer)
    caps.check_caps(policy, c.month_period, c.year_period,
                    caps.earned(view, signer, c.month_period),
                    caps.earned(view, signer, c.year_period),
                    caps.reserved_at(record, c.time_ms), reward)
    caps.reserve_open(record, deadline, reward)
    caps.store_reservations(view, signer, record, c.time_ms)
    task["taken"] += 1
    view.put(st.task_key(task_id), st.pack(task))
    view.put(st.claim_key(task_id, signer), st.pack({"state": "open"}))
    view.put(st.claim_index_key(signer, task_id), b"")
    return [{"kind": "task.claimed", "task": task_id, "citizen": signer, "reserved": reward}]


def withdraw(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, task_id = c.view, args["task"]
    task = _task(view, task_id)
    found = _claim(view, task_id, signer)
    if found is None or found["state"] not in UNRESOLVED or (
            found["state"] == "open" and task["deadline"] <= c.time_ms):
        raise Reject("not_found")
    if found["state"] == "submitted":
        raise Reject("invalid_state")
    record = caps.load_reservations(view, signer)
    caps.release_open(record, task["deadline"], task["reward"], c.time_ms)
    caps.store_reservations(view, signer, record, c.time_ms)
    task["taken"] -= 1
    view.put(st.task_key(task_id), st.pack(task))
    view.put(st.claim_key(task_id, signer), st.pack({"state": "withdrawn"}))
    return [{"kind": "task.withdrawn", "task": task_id, "citizen": signer}]


def submit(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, task_id, proof = c.view, args["task"], args["proof"]
    task = _task(view, task_id)
    found = _claim(view, task_id, signer)
    if found is None or found["state"] not in UNRESOLVED:
        raise Reject("not_found")
    if found["state"] == "submitted":
        raise Reject("invalid_state")
    if c.time_ms >= task["deadline"]:
        raise Reject("deadline_passed")
    record = caps.load_reservations(view, signer)
    caps.release_open(record, task["deadline"], task["reward"], c.time_ms)
    record["submitted"] += task["reward"]
    caps.store_reservations(view, signer, record, c.time_ms)
    view.put(st.claim_key(task_id, signer), st.pack({"state": "submitted", "proof": proof}))
    return [{"kind": "task.submitted", "task": task_id, "citizen": signer, "proof": proof}]


def _submitted_claim(view, task_id: str, citizen: bytes) -> tuple[dict, dict]:
    task = _task(view, task_id)
    if view.get(st.MEMBER + citizen) is None:
        raise Reject("not_found")
    found = _claim(view, task_id, citizen)
    if found is None:
        raise Reject("not_found")
    if found["state"] != "submitted":
        raise Reject("invalid_state")
    return task, found


def approve(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, task_id, citizen = c.view, args["task"], args["citizen"]
    task, found = _submitted_claim(view, task_id, citizen)
    policy = caps.require_policy(view, c.year)
    reward = task["reward"]
    caps.check_caps(policy, c.month_period, c.year_period,
                    caps.earned(view, citizen, c.month_period),
                    caps.earned(view, citizen, c.year_period), 0, reward)
    record = caps.load_reservations(view, citizen)
    record["submitted"] -= reward
    caps.store_reservations(view, citizen, record, c.time_ms)
    caps.add_earned(view, citizen, c.month_period, reward)
    caps.add_earned(view, citizen, c.year_period, reward)
    member = st.get_member(view, citizen)
    member["balance"] += reward
    st.put_member(view, citizen, member)
    view.put(st.MINTED, st.pack(st.get_int(view, st.MINTED) + reward))
    view.put(st.claim_key(task_id, citizen), st.pack(dict(found, state="approved")))
    return [{"kind": "task.approved", "task": task_id, "citizen": citizen, "minted": reward}]


def reject(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, task_id, citizen = c.view, args["task"], args["citizen"]
    task, found = _submitted_claim(view, task_id, citizen)
    record = caps.load_reservations(view, citizen)
    record["submitted"] -= task["reward"]
    caps.store_reservations(view, citizen, record, c.time_ms)
    task["taken"] -= 1
    view.put(st.task_key(task_id), st.pack(task))
    view.put(st.claim_key(task_id, citizen), st.pack(dict(found, state="rejected")))
    return [{"kind": "task.rejected", "task": task_id, "citizen": citizen,
             "reason": args["reason"]}]


def cancel(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, task_id = c.view, args["task"]
    task = _task(view, task_id)
    if task["cancelled"]:
        raise Reject("invalid_state")
    prefix = st.CLAIM + st.task_part(task_id)
    released = []
    for key, raw in view.scan(prefix):      # ascending key order: deterministic
        if st.unpack(raw)["state"] != "open":
            continue
        citizen = key[len(prefix):]
        record = caps.load_reservations(view, citizen)
        caps.release_open(record, task["deadline"], task["reward"], c.time_ms)
        caps.store_reservations(view, citizen, record, c.time_ms)
        view.put(key, st.pack({"state": "released"}))
        released.append(citizen)
    task["taken"] -= len(released)
    task["cancelled"] = True
    view.put(st.task_key(task_id), st.pack(task))
    return [{"kind": "task.cancelled", "task": task_id, "released": released}]
