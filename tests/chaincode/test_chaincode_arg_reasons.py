"""invalid_args says which argument failed and why: info {"argument", "problem"}, a
language-free word of args.PROBLEMS; its `detail` names the argument, in English and in
Dutch (chaincode/describe.py). The cases are made from SCHEMAS, so a new kind is covered."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from chaincode import args as a
from chaincode import constitution
from chaincode.describe import LANGUAGES, TEXTS, describe
from chaincode.errors import CODES
from chaincode_harness import ADMIN, Chain, key

SIGNER = b"s" * 32
OTHER = b"k" * 32


def good_value(check):
    """A value the check takes (the checks are the module's functions or text(n))."""
    samples = {a.key32: OTHER, a.ident: "x1", a.tx_id: "ab" * 32, a.amount: 5, a.cap: 10,
               a.year: 2030, a.minutes: 60, a.slots: 2, a.time_ms: 1_000, a.role: "admin",
               a.band: "21plus", a.thresholds: {k: 1 for k in constitution.CLASSES},
               a.organisations: ["city"], a.recovery_delay: 0,
               a.governable: "member.revoke", a.action_args: {"key": OTHER},
               a.rules_version: 2, a.block_height: 100,
               a.validator_list: [{"name": "v1", "key": OTHER, "organisation": "city"}]}
    return samples.get(check, "x")         # text(n): the only other checks


def good_args(kind: str) -> dict:
    """The kind's required args, plus what its rules across args need."""
    args = {name: good_value(check) for name, (check, required) in a.SCHEMAS[kind].items()
            if required}
    if kind == "member.update":
        args["area"] = "GMS"
    return args


KINDS = sorted(a.SCHEMAS)
REQUIRED = [(kind, name) for kind in KINDS
            for name, (_, required) in a.SCHEMAS[kind].items() if required]
EVERY_ARG = [(kind, name) for kind in KINDS for name in a.SCHEMAS[kind]]
WRONG_TYPES = (None, True, 1.5, ["x"])


def test_the_samples_are_valid_args_of_every_kind():
    for kind in KINDS:
        assert a.valid(kind, SIGNER, good_args(kind)), kind
        assert a.reason(kind, SIGNER, good_args(kind)) is None, kind


@pytest.mark.parametrize("kind,name", REQUIRED)
def test_a_missing_argument_is_named_missing(kind, name):
    args = good_args(kind)
    del args[name]
    assert not a.valid(kind, SIGNER, args)
    assert a.invalid_info(kind, SIGNER, args) == {"argument": name, "problem": "missing"}


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_extra_argument_is_named_unknown(kind):
    args = dict(good_args(kind), colour="blue")
    assert not a.valid(kind, SIGNER, args)
    assert a.invalid_info(kind, SIGNER, args) == {"argument": "colour", "problem": "unknown"}


@pytest.mark.parametrize("kind,name", EVERY_ARG)
def test_a_value_of_the_wrong_type_is_named_type(kind, name):
    for wrong in WRONG_TYPES:
        if kind == "constitution.set" and name == "organisations" and type(wrong) is list:
            continue                       # a list is this one's type
        args = dict(good_args(kind), **{name: wrong})
        assert not a.valid(kind, SIGNER, args), (kind, name, wrong)
        assert a.invalid_info(kind, SIGNER, args) == {"argument": name, "problem": "type"}


@pytest.mark.parametrize("kind,name,value,problem", [
    ("coin.spend", "amount", 0, "range"),
    ("rules.activate", "version", 1, "range"),
    ("rules.activate", "version", 65_536, "range"),
    ("rules.activate", "height", 0, "range"),
    ("coin.spend", "amount", a.MAX_AMOUNT + 1, "range"),
    ("task.post", "minutes", 10_081, "range"),
    ("policy.set", "year", 1999, "range"),
    ("coin.spend", "memo", "é" * 141, "length"),
    ("task.reject", "reason", "", "length"),
    ("member.revoke", "key", b"k" * 31, "length"),
    ("task.claim", "task", "x" * 65, "length"),
    ("task.claim", "task", "a/b", "format"),
    ("gov.approve", "proposal", "AB" * 32, "format"),
    ("gov.approve", "proposal", "ab" * 31, "length"),
    ("member.register", "role", "king", "choice"),
    ("gov.propose", "action", "validators.send", "choice"),
    ("validators.set", "validators", [], "length"),
    ("validators.set", "validators", [{"name": "v", "key": OTHER, "organisation": "o"}] * 2,
     "length"),
    ("validators.set", "validators", ["v1"], "type"),
    ("validators.set", "validators", [{"name": "v", "key": OTHER}], "format"),
    ("validators.set", "validators", [{"name": "v", "key": OTHER.hex(), "organisation": "o"}],
     "type"),
    ("validators.set", "validators", [{"name": "v", "key": OTHER[:31], "organisation": "o"}],
     "length"),
    ("validators.set", "validators", [{"name": "v w", "key": OTHER, "organisation": "o"}],
     "format"),
    ("constitution.set", "thresholds", {"policy.set": 1}, "format"),
    ("constitution.set", "thresholds", {k: 0 for k in constitution.CLASSES}, "range"),
    ("constitution.set", "organisations", [], "length"),
    ("constitution.set", "organisations", ["city", "city"], "format"),
    ("constitution.set", "recovery_delay_ms", -1, "range"),
])
def test_a_value_out_of_its_range_length_form_or_choice(kind, name, value, problem):
    args = dict(good_args(kind), **{name: value})
    assert a.invalid_info(kind, SIGNER, args) == {"argument": name, "problem": problem}


def test_the_rules_across_arguments_name_the_argument_they_refuse():
    assert a.invalid_info("coin.spend", SIGNER, {"to": SIGNER, "amount": 1}) == \
        {"argument": "to", "problem": "conflict"}
    policy = {"year": 2030, "hourly_cap_21plus": 1, "hourly_cap_under21": 1,
              "monthly_cap": 11, "yearly_cap": 10}
    assert a.reason("policy.set", SIGNER, policy) == ("monthly_cap", "conflict")
    policy.update(monthly_cap=10, programme_yearly_cap=11)
    assert a.reason("policy.set", SIGNER, policy) == ("programme_yearly_cap", "conflict")
    citizen = {"key": OTHER, "role": "citizen", "age_band": "21plus"}
    assert a.reason("member.register", SIGNER, citizen) == ("area", "missing")
    merchant = {"key": OTHER, "role": "merchant", "name": "De Kroon", "area": "GMS"}
    assert a.reason("member.register", SIGNER, merchant) == ("area", "unknown")
    assert a.reason("member.update", SIGNER, {"key": OTHER}) == (a.WHOLE, "missing")
    assert a.reason("task.claim", SIGNER, ["t1"]) == (a.WHOLE, "type")
    assert a.reason("task.claim", SIGNER, {"task": "t1", 5: 1}) == (a.WHOLE, "type")


def test_a_proposals_action_args_are_named_under_args():
    def propose(action, args):
        return a.reason("gov.propose", SIGNER, {"action": action, "args": args,
                                                "expires": 1})
    assert propose("member.revoke", {}) == ("args.key", "missing")
    assert propose("member.revoke", {"key": b"x"}) == ("args.key", "length")
    assert propose("member.revoke", {"key": OTHER, "why": 1}) == ("args.why", "unknown")
    assert propose("policy.set", {"year": 2030, "hourly_cap_21plus": 1,
                                  "hourly_cap_under21": 1, "monthly_cap": 2,
                                  "yearly_cap": 1}) == ("args.monthly_cap", "conflict")


def test_the_first_failure_is_the_same_whatever_the_order_of_the_args():
    args = {"title": 5, "task": "a/b", "zz": 1, "aa": 2, "reward": 0}
    answers = {a.reason("task.post", SIGNER, dict(order))
               for order in itertools.permutations(args.items())}
    assert answers == {("aa", "unknown")}
    del args["zz"], args["aa"]
    assert a.reason("task.post", SIGNER, args) == ("task", "format")   # schema order


def test_an_unknown_name_is_told_in_at_most_64_code_points():
    info = a.invalid_info("task.claim", SIGNER, {"task": "t", "é" * 5000: 1})
    assert info == {"argument": "é" * a.MAX_NAME, "problem": "unknown"}


def test_every_check_of_every_schema_can_say_why():
    for kind in KINDS:
        for name, (check, _) in a.SCHEMAS[kind].items():
            assert check.why(None) in a.PROBLEMS, (kind, name)


names = st.sampled_from(sorted({n for s in a.SCHEMAS.values() for n in s} | {"tip"}))
values = st.one_of(st.none(), st.booleans(), st.integers(-2, 2**53 + 1),
                   st.binary(max_size=33), st.text(max_size=70), st.just(OTHER),
                   st.just(SIGNER), st.sampled_from(["admin", "citizen", "21plus", "GMS",
                                                     "ab" * 32, "member.revoke"]),
                   st.lists(st.text(max_size=3), max_size=3),
                   st.dictionaries(st.sampled_from(["key", "year"]), st.just(OTHER)))


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(KINDS), st.data())
def test_a_reason_is_given_exactly_when_the_args_are_not_valid(kind, data):
    base = good_args(kind)
    changes = data.draw(st.dictionaries(names, values, max_size=3))
    drop = data.draw(st.lists(st.sampled_from(sorted(base)), max_size=2)) if base else []
    args = {k: v for k, v in dict(base, **changes).items() if k not in drop}
    why = a.reason(kind, SIGNER, args)
    assert (why is None) == a.valid(kind, SIGNER, args)
    if why is not None:
        argument, problem = why
        assert type(argument) is str and problem in a.PROBLEMS


# ---- through the chaincode: the result's info ----

def test_the_chaincode_answers_invalid_args_with_the_argument_and_its_problem():
    chain = Chain()
    result = chain.do(ADMIN, "task.post", task="t1", title="Litter", area="GMS",
                      domain="public-space", reward=500, minutes="60", slots=2,
                      deadline=chain.time_ms + 1)
    assert (result.code, result.info) == ("invalid_args",
                                          {"argument": "minutes", "problem": "type"})
    result = chain.do(key("nobody"), "coin.spend", to=ADMIN)
    assert (result.code, result.info) == ("invalid_args",
                                          {"argument": "amount", "problem": "missing"})


# ---- the sentences, in both languages ----

def shape(value):
    """The keys of nested tables, with every leaf replaced by whether it is a sentence."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value) is str and value.strip() != ""


def test_every_language_has_every_sentence_and_none_is_empty():
    assert set(TEXTS) == set(LANGUAGES) == {"en", "nl"}
    english = shape(TEXTS["en"])
    for language in LANGUAGES:
        assert shape(TEXTS[language]) == english, language
    assert all(english_leaf for english_leaf in _leaves(english))


def _leaves(table):
    for value in table.values():
        yield from _leaves(value) if isinstance(value, dict) else [value]


def test_every_code_and_every_argument_has_a_sentence_in_each_language():
    arguments = {n for s in a.SCHEMAS.values() for n in s}
    for language in LANGUAGES:
        assert set(CODES) | {"ok", "malformed", "bad_signature", "wrong_chain"} <= \
            set(TEXTS[language]["codes"])
        assert arguments <= set(TEXTS[language]["rules"]), arguments - set(
            TEXTS[language]["rules"])
        codes = [describe(code, {}, language) for code in CODES + ("ok",)]
        assert len(set(codes)) == len(codes) and all(c.endswith(".") for c in codes)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_sentence_of_invalid_args_names_the_argument(language):
    arguments = sorted({n for s in a.SCHEMAS.values() for n in s})
    for argument, problem in itertools.product(arguments + ["args.key", "colour"],
                                               a.PROBLEMS):
        sentence = describe("invalid_args", {"argument": argument, "problem": problem},
                            language)
        assert sentence.startswith(f"{argument}: ") and sentence.endswith("."), sentence
        assert "{" not in sentence
    assert describe("invalid_args", {}, language) == TEXTS[language]["codes"]["invalid_args"]


def test_the_amount_sentence_in_english_and_dutch():
    info = {"argument": "amount", "problem": "range"}
    assert describe("invalid_args", info) == \
        "amount: must be a whole number of cents from 1 to 9,007,199,254,740,991."
    assert describe("invalid_args", info, "nl") == \
        "amount: moet een heel aantal centen van 1 tot en met 9.007.199.254.740.991 zijn."
    assert describe("insufficient_funds", {}, "nl") == \
        "U heeft niet genoeg munten voor deze betaling."


def test_cap_and_hourly_sentences_in_dutch_use_dutch_euros():
    cap = describe("cap_exceeded", {"cap": "monthly", "period": "2026-11", "allowed": 1250},
                   "nl")
    assert "maandgrens" in cap and "2026-11" in cap and "12,50" in cap
    assert "niets meer" in describe("cap_exceeded", {"cap": "yearly", "period": "2026",
                                                     "allowed": 0}, "nl")
    hourly = describe("hourly_rate_exceeded", {"band": "under21", "max_reward": 660}, "nl")
    assert "onder de 21" in hourly and "6,60" in hourly
    programme = describe("cap_exceeded", {"cap": "programme", "period": "2026",
                                          "allowed": 1})
    assert "over the city's yearly programme limit" in programme


def test_an_unknown_language_is_english():
    assert describe("task_full", {}, "de") == describe("task_full", {})
