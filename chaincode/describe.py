"""The plain sentence an app shows for a result code and its info (not hashed).

The info of most codes is empty, so a sentence names the cases of its code, the
governance ones included (docs/api.md, "Results")."""
from __future__ import annotations


def _euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


_CAP_NAMES = {"monthly": "monthly limit", "yearly": "yearly limit",
              "programme": "the city's yearly programme limit"}
_BANDS = {"21plus": "people aged 21 and over", "under21": "people under 21"}

_SENTENCES = {
    "ok": "Done.",
    "duplicate": "This transaction was already handled; nothing was done again.",
    "unknown_kind": "This kind of transaction does not exist.",
    "invalid_args": "Some details of this request are missing or not valid.",
    "unknown_member": "This key is not registered with the programme.",
    "revoked": "This key has been blocked; ask the municipality to recover your account.",
    "frozen": ("This key is frozen while a recovery of it is open; ask the municipality "
               "or a steward to cancel the recovery if you did not ask for it."),
    "unauthorized": ("Your role does not allow this; a change the constitution governs is "
                     "made by the stewards' proposal and approvals."),
    "not_found": ("That task, claim, spend, payout, member, organisation, proposal or open "
                  "recovery does not exist, or is not yours."),
    "exists": ("That already exists: a task id or key already used, a claim already made, "
               "or an approval your organisation already gave."),
    "invalid_state": ("This cannot be done in the current state of things (for instance a "
                      "proposal that is no longer open, a recovery that is open already or "
                      "not yet due, or a threshold the constitution does not allow)."),
    "not_a_merchant": "Coins can only be paid to an active local merchant.",
    "deadline_passed": ("The deadline of this task, or the expiry of this proposal, "
                        "has passed."),
    "task_full": "All places on this task are taken.",
    "insufficient_funds": "There are not enough coins in this account.",
    "malformed": "The transaction could not be read.",
    "bad_signature": "The transaction's signature is not valid.",
    "wrong_chain": "The transaction was made for another network.",
}


def describe(code: str, info: dict) -> str:
    if code == "cap_exceeded" and {"cap", "period", "allowed"} <= set(info):
        allowed = info["allowed"]
        room = (f"you can still earn {_euros(allowed)} coins then" if allowed
                else "you cannot earn more then")
        return (f"This would take you over the {_CAP_NAMES.get(info['cap'], 'limit')} "
                f"for {info['period']} of the tax-free volunteer allowance; {room}. "
                "This keeps your allowance tax-free.")
    if code == "cap_exceeded":
        return "This would take you over a limit of the tax-free volunteer allowance."
    if code == "hourly_rate_exceeded" and {"band", "max_reward"} <= set(info):
        return (f"The reward is above the tax-free hourly rate for "
                f"{_BANDS.get(info['band'], 'this age group')}: at most "
                f"{_euros(info['max_reward'])} coins for this much time.")
    if code == "hourly_rate_exceeded":
        return "The reward is above the tax-free hourly rate."
    return _SENTENCES.get(code, "The transaction was refused.")
