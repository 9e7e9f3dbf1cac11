"""The plain sentence an app shows for a result code and its info (not hashed), in
English or Dutch.

The gateway makes `detail` from a result's code and info with describe(); the sentence
is never part of a result, so the language an app asks for changes no hash. The info of
most codes is empty, so a sentence names the cases of its code, the governance ones
included (docs/api.md, "Results"). TEXTS holds every sentence in every language, with
the same keys in each (tests/chaincode/test_chaincode_arg_reasons.py holds it to that).
"""
from __future__ import annotations

from . import constitution
from .args import BANDS, MAX_AMOUNT, MAX_RULES_VERSION, MAX_VALIDATORS, ROLES, WHOLE

LANGUAGES = ("en", "nl")
DEFAULT_LANGUAGE = "en"


def _number(value: int, language: str) -> str:
    text = f"{value:,}"
    return text.replace(",", ".") if language == "nl" else text


def _euros(cents: int, language: str = DEFAULT_LANGUAGE) -> str:
    whole = _number(cents // 100, language)
    return f"{whole},{cents % 100:02d}" if language == "nl" else f"{whole}.{cents % 100:02d}"


def _rules(language: str) -> dict[str, str]:
    """What each argument must be, by its name (a name means one check in every kind):
    "must be <this>" in English, "moet <dit> zijn" in Dutch."""
    en = language == "en"

    def n(value: int) -> str:
        return _number(value, language)

    key = "a key of 32 bytes" if en else "een sleutel van 32 bytes"
    ident = ("an id of 1 to 64 letters, digits, '.', '_' or '-'" if en else
             "een id van 1 tot en met 64 letters, cijfers, '.', '_' of '-'")
    tx_id = ("a transaction id of 64 lowercase hexadecimal characters" if en else
             "een transactie-id van 64 hexadecimale tekens in kleine letters")
    cents = (f"a whole number of cents from {{}} to {n(MAX_AMOUNT)}" if en else
             f"een heel aantal centen van {{}} tot en met {n(MAX_AMOUNT)}")
    cap, amount = cents.format(0), cents.format(1)
    time = ("a time in milliseconds since 1 January 1970 (UTC), from 0 to 2^63 - 1" if en
            else "een tijdstip in milliseconden sinds 1 januari 1970 (UTC), van 0 tot en "
                 "met 2^63 - 1")

    def text(least: int, most: int) -> str:
        if least == 0:
            return (f"a text of at most {most} characters" if en else
                    f"een tekst van hooguit {most} tekens")
        return (f"a text of {least} to {most} characters" if en else
                f"een tekst van {least} tot en met {most} tekens")

    def one_of(words) -> str:
        listed = ", ".join(words[:-1]) + (" or " if en else " of ") + words[-1]
        return f"one of {listed}" if en else listed

    least = ", ".join(f"{k} {constitution.LEAST[k]}" for k in constitution.CLASSES)
    most = constitution.MAX_ORGANISATIONS
    return {
        "key": key, "old": key, "new": key, "citizen": key, "to": key,
        "proof": ("a proof of 32 bytes (a hash)" if en else
                  "een bewijs van 32 bytes (een hash)"),
        "role": one_of(ROLES), "age_band": one_of(BANDS), "action": one_of(
            constitution.GOVERNABLE_KINDS),
        "area": ident, "organisation": ident, "task": ident, "domain": ident,
        "name": text(1, 120), "title": text(1, 120), "reason": text(1, 280),
        "memo": text(0, 140), "reference": text(1, 140),
        "year": "a year from 2000 to 9999" if en else "een jaartal van 2000 tot en met 9999",
        "hourly_cap_21plus": cap, "hourly_cap_under21": cap, "monthly_cap": cap,
        "yearly_cap": cap, "programme_yearly_cap": cap, "reward": amount, "amount": amount,
        "minutes": (f"a whole number of minutes from 1 to {n(10_080)} (a week)" if en else
                    f"een heel aantal minuten van 1 tot en met {n(10_080)} (een week)"),
        "slots": (f"a whole number from 1 to {n(10_000)}" if en else
                  f"een heel getal van 1 tot en met {n(10_000)}"),
        "deadline": time, "expires": time, "spend": tx_id, "payout": tx_id,
        "proposal": tx_id,
        "thresholds": (f"a map of every class of the constitution to a whole number of "
                       f"organisations, from the class's least ({least}) to {most}" if en
                       else f"een tabel met voor elke klasse van de constitutie een heel "
                            f"aantal organisaties, van het minimum van die klasse ({least}) "
                            f"tot en met {most}"),
        "recovery_delay_ms": (
            f"a whole number of milliseconds from 0 to "
            f"{n(constitution.MAX_RECOVERY_DELAY_MS)} (30 days)" if en else
            f"een heel aantal milliseconden van 0 tot en met "
            f"{n(constitution.MAX_RECOVERY_DELAY_MS)} (30 dagen)"),
        "organisations": (f"a list of 1 to {most} different organisation ids" if en else
                          f"een lijst van 1 tot en met {most} verschillende "
                          f"organisatie-id's"),
        "args": ("a map of the details of the proposed action" if en else
                 "een tabel met de gegevens van de voorgestelde actie"),
        "version": (f"a rules version, a whole number from 2 to {n(MAX_RULES_VERSION)}"
                    if en else f"een versie van de regels, een heel getal van 2 tot en met "
                               f"{n(MAX_RULES_VERSION)}"),
        "height": ("a block height, a whole number from 1 to 2^63 - 1" if en else
                   "een blokhoogte, een heel getal van 1 tot en met 2^63 - 1"),
        "validators": (f"a list of 1, or 4 to {n(MAX_VALIDATORS)}, validators, each with "
                       f"a name (an id), a key of 32 bytes and an organisation of this "
                       f"chain, no name or key twice" if en else
                       f"een lijst van 1, of 4 tot en met {n(MAX_VALIDATORS)}, validators, "
                       f"elk met een naam (een id), een sleutel van 32 bytes en een "
                       f"organisatie van deze keten, geen naam of sleutel twee keer"),
    }


TEXTS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "codes": {
            "ok": "Done.",
            "duplicate": "This transaction was already handled; nothing was done again.",
            "unknown_kind": "This kind of transaction does not exist.",
            "invalid_args": "Some details of this request are missing or not valid.",
            "unknown_member": "This key is not registered with the programme.",
            "revoked": ("This key has been blocked; ask the municipality to recover your "
                        "account."),
            "frozen": ("This key is frozen while a recovery of it is open; ask the "
                       "municipality or a steward to cancel the recovery if you did not "
                       "ask for it."),
            "unauthorized": ("Your role does not allow this; a change the constitution "
                             "governs is made by the stewards' proposal and approvals."),
            "not_found": ("That task, claim, spend, payout, member, organisation, proposal "
                          "or open recovery does not exist, or is not yours."),
            "exists": ("That already exists: a task id or key already used, a claim "
                       "already made, or an approval your organisation already gave."),
            "invalid_state": ("This cannot be done in the current state of things (for "
                              "instance a proposal that is no longer open, a recovery that "
                              "is open already or not yet due, a threshold the "
                              "constitution does not allow, a rules switch too soon or "
                              "to a version not above the one in force, or a validator set "
                              "that is the one scheduled already)."),
            "not_a_merchant": "Coins can only be paid to an active local merchant.",
            "deadline_passed": ("The deadline of this task, or the expiry of this "
                                "proposal, has passed."),
            "task_full": "All places on this task are taken.",
            "hourly_rate_exceeded": "The reward is above the tax-free hourly rate.",
            "cap_exceeded": ("This would take you over a limit of the tax-free volunteer "
                             "allowance."),
            "insufficient_funds": "There are not enough coins in this account.",
            "malformed": "The transaction could not be read.",
            "bad_signature": "The transaction's signature is not valid.",
            "wrong_chain": "The transaction was made for another network.",
            "refused": "The transaction was refused.",
        },
        "phrases": {
            "cap": ("This would take you over the {cap} for {period} of the tax-free "
                    "volunteer allowance; {room}. This keeps your allowance tax-free."),
            "room": "you can still earn {euros} coins then",
            "no_room": "you cannot earn more then",
            "some_cap": "limit",
            "hourly": ("The reward is above the tax-free hourly rate for {band}: at most "
                       "{euros} coins for this much time."),
            "some_band": "this age group",
            "missing": "{argument}: this detail is missing; it must be {rule}.",
            "value": "{argument}: must be {rule}.",
            "unknown": "{argument}: this request does not take this detail.",
            "conflict": "{argument}: does not fit the other details of this request.",
            "not_valid": "{argument}: this detail is not valid.",
            "whole_type": "The details of this request must be a map of names to values.",
            "whole_missing": "Give at least one detail to change (age_band or area).",
        },
        "caps": {"monthly": "monthly limit", "yearly": "yearly limit",
                 "programme": "city's yearly programme limit"},
        "bands": {"21plus": "people aged 21 and over", "under21": "people under 21"},
        "conflicts": {
            "to": "to: you cannot pay coins to your own key.",
            "monthly_cap": "monthly_cap: must not be above yearly_cap.",
            "programme_yearly_cap": "programme_yearly_cap: must not be above yearly_cap.",
        },
        "rules": _rules("en"),
    },
    "nl": {
        "codes": {
            "ok": "Gelukt.",
            "duplicate": "Deze transactie is al verwerkt; er is niets opnieuw gedaan.",
            "unknown_kind": "Dit soort transactie bestaat niet.",
            "invalid_args": "Sommige gegevens van dit verzoek ontbreken of kloppen niet.",
            "unknown_member": "Deze sleutel is niet aangemeld bij het programma.",
            "revoked": ("Deze sleutel is geblokkeerd; vraag de gemeente om uw account te "
                        "herstellen."),
            "frozen": ("Deze sleutel is bevroren zolang er een herstel van loopt; heeft u "
                       "daar niet om gevraagd, vraag dan de gemeente of een beheerder om "
                       "het herstel te stoppen."),
            "unauthorized": ("Uw rol staat dit niet toe; een wijziging die onder de "
                             "constitutie valt, gaat via een voorstel van de beheerders en "
                             "hun goedkeuring."),
            "not_found": ("Wat u zoekt (een taak, aanmelding, betaling, uitbetaling, "
                          "deelnemer, organisatie, voorstel of lopend herstel) bestaat "
                          "niet, of is niet van u."),
            "exists": ("Dat bestaat al: een taak-id of sleutel die al gebruikt is, een "
                       "aanmelding die al gedaan is, of een goedkeuring die uw organisatie "
                       "al gaf."),
            "invalid_state": ("Dit kan nu niet (bijvoorbeeld een voorstel dat niet meer "
                              "openstaat, een herstel dat al loopt of nog niet afgerond "
                              "mag worden, een drempel die de constitutie niet "
                              "toestaat, een overstap op nieuwe regels die te snel komt "
                              "of naar een versie die niet hoger is dan de huidige, of een "
                              "set validators die al gepland is)."),
            "not_a_merchant": "U kunt munten alleen betalen aan een actieve lokale "
                              "ondernemer.",
            "deadline_passed": ("De einddatum van deze taak, of van dit voorstel, is "
                                "voorbij."),
            "task_full": "Alle plaatsen voor deze taak zijn bezet.",
            "hourly_rate_exceeded": "De beloning is hoger dan het belastingvrije uurtarief.",
            "cap_exceeded": ("Hiermee komt u boven een grens van de belastingvrije "
                             "vrijwilligersvergoeding."),
            "insufficient_funds": "U heeft niet genoeg munten voor deze betaling.",
            "malformed": "De transactie kon niet worden gelezen.",
            "bad_signature": "De handtekening van de transactie is niet geldig.",
            "wrong_chain": "De transactie is gemaakt voor een ander netwerk.",
            "refused": "De transactie is geweigerd.",
        },
        "phrases": {
            "cap": ("Hiermee komt u boven de {cap} van de belastingvrije "
                    "vrijwilligersvergoeding voor {period}; {room}. Zo blijft uw "
                    "vergoeding belastingvrij."),
            "room": "u kunt in die periode nog {euros} munten verdienen",
            "no_room": "u kunt in die periode niets meer verdienen",
            "some_cap": "grens",
            "hourly": ("De beloning is hoger dan het belastingvrije uurtarief voor {band}: "
                       "hooguit {euros} munten voor deze tijd."),
            "some_band": "deze leeftijdsgroep",
            "missing": "{argument}: dit gegeven ontbreekt; het moet {rule} zijn.",
            "value": "{argument}: moet {rule} zijn.",
            "unknown": "{argument}: dit gegeven hoort niet bij dit verzoek.",
            "conflict": "{argument}: past niet bij de andere gegevens van dit verzoek.",
            "not_valid": "{argument}: dit gegeven klopt niet.",
            "whole_type": ("De gegevens van dit verzoek moeten een tabel van namen en "
                           "waarden zijn."),
            "whole_missing": "Geef ten minste één gegeven om te wijzigen (age_band of area).",
        },
        "caps": {"monthly": "maandgrens", "yearly": "jaargrens",
                 "programme": "jaargrens van het gemeentelijke programma"},
        "bands": {"21plus": "mensen van 21 jaar en ouder", "under21": "mensen onder de 21"},
        "conflicts": {
            "to": "to: u kunt geen munten aan uw eigen sleutel betalen.",
            "monthly_cap": "monthly_cap: mag niet hoger zijn dan yearly_cap.",
            "programme_yearly_cap": "programme_yearly_cap: mag niet hoger zijn dan "
                                    "yearly_cap.",
        },
        "rules": _rules("nl"),
    },
}


def describe(code: str, info: dict, language: str = DEFAULT_LANGUAGE) -> str:
    """The sentence for a code and its info in `language` ("en" or "nl"; any other is
    English)."""
    texts = TEXTS.get(language, TEXTS[DEFAULT_LANGUAGE])
    phrases, codes = texts["phrases"], texts["codes"]
    if code == "cap_exceeded" and {"cap", "period", "allowed"} <= set(info):
        allowed = info["allowed"]
        room = (phrases["room"].format(euros=_euros(allowed, language)) if allowed
                else phrases["no_room"])
        return phrases["cap"].format(cap=texts["caps"].get(info["cap"], phrases["some_cap"]),
                                     period=info["period"], room=room)
    if code == "hourly_rate_exceeded" and {"band", "max_reward"} <= set(info):
        return phrases["hourly"].format(
            band=texts["bands"].get(info["band"], phrases["some_band"]),
            euros=_euros(info["max_reward"], language))
    if code == "invalid_args" and {"argument", "problem"} <= set(info):
        return _argument_sentence(texts, str(info["argument"]), info["problem"])
    return codes.get(code, codes["refused"])


def _argument_sentence(texts: dict, argument: str, problem: str) -> str:
    """invalid_args's sentence: the argument by name, what is wrong, what it must be."""
    phrases = texts["phrases"]
    if argument == WHOLE:
        return phrases["whole_missing" if problem == "missing" else "whole_type"]
    name = argument[len("args."):] if argument.startswith("args.") else argument
    rule = texts["rules"].get(name)
    if problem == "unknown":
        return phrases["unknown"].format(argument=argument)
    if problem == "conflict":
        sentence = texts["conflicts"].get(argument)
        return sentence if sentence is not None else \
            phrases["conflict"].format(argument=argument)
    if rule is None:
        return phrases["not_valid"].format(argument=argument)
    return phrases["missing" if problem == "missing" else "value"].format(
        argument=argument, rule=rule)
