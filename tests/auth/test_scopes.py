"""SMART on FHIR scope logic (mockehr.auth.scopes) against SMART App Launch 2.2."""

import itertools
import random

import pytest

from mockehr.auth.scope_words import describe, describe_other
from mockehr.auth.scopes import (
    GRANULAR_CATEGORIES, Access, ResourceScope, ScopeError, ScopeSet, access,
    granular_options, grants, interaction_letter, is_narrower_or_equal, parse_scope, parse_scopes,
    restrict_to, to_v2,
)

OBS = "http://terminology.hl7.org/CodeSystem/observation-category"
LAB = f"{OBS}|laboratory"
VITALS = f"{OBS}|vital-signs"
SDOH = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category|sdoh"
COND = "http://terminology.hl7.org/CodeSystem/condition-category"
HEALTH_CONCERN = "http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern"

# Written out by hand (not taken from the module) so the tests can disagree with it.
V1_LETTERS = {"read": {"r", "s"}, "write": {"c", "u", "d"}, "*": {"c", "r", "u", "d", "s"}}
ALL_V2 = ["".join(c) for n in range(1, 6) for c in itertools.combinations("cruds", n)]


def one(token: str) -> ResourceScope:
    scope = parse_scope(token)
    assert scope is not None
    return scope


def scopes(text: str) -> tuple[ResourceScope, ...]:
    return parse_scopes(text).resource


# --- parsing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("token, context, resource, letters, version", [
    ("patient/Observation.read", "patient", "Observation", "rs", 1),
    ("patient/Observation.write", "patient", "Observation", "cud", 1),
    ("user/*.*", "user", "*", "cruds", 1),
    ("user/*.read", "user", "*", "rs", 1),
    ("system/Patient.*", "system", "Patient", "cruds", 1),
    ("patient/*.rs", "patient", "*", "rs", 2),
    ("user/*.cruds", "user", "*", "cruds", 2),
    ("system/Encounter.cud", "system", "Encounter", "cud", 2),
    ("patient/AllergyIntolerance.c", "patient", "AllergyIntolerance", "c", 2),
    ("patient/MedicationRequest.s", "patient", "MedicationRequest", "s", 2),
    ("user/Condition.d", "user", "Condition", "d", 2),
])
def test_parse_resource_scope(token, context, resource, letters, version):
    scope = one(token)
    assert scope == ResourceScope(context, resource, frozenset(letters), (), version, token)


@pytest.mark.parametrize("letters", ALL_V2)
def test_every_ordered_v2_subset_parses(letters):
    scope = one(f"patient/Observation.{letters}")
    assert scope.permissions == frozenset(letters) and scope.version == 2


def test_all_31_v2_subsets_are_covered():
    assert len(ALL_V2) == 31


@pytest.mark.parametrize("letters", sorted({"".join(p) for n in range(2, 6)
                                            for p in itertools.permutations("cruds", n)} - set(ALL_V2)))
def test_every_out_of_order_v2_permission_is_rejected(letters):
    with pytest.raises(ScopeError, match="order c, r, u, d, s"):
        parse_scope(f"patient/Observation.{letters}")


@pytest.mark.parametrize("token, params", [
    (f"patient/Observation.rs?category={LAB}", (("category", LAB),)),
    (f"user/Observation.rs?category={LAB}&code=http://loinc.org|8867-4",
     (("category", LAB), ("code", "http://loinc.org|8867-4"))),
    ("patient/Observation.rs?code=http%3A%2F%2Floinc.org%7C8867-4", (("code", "http://loinc.org|8867-4"),)),
    ("patient/Observation.rs?code=caf%C3%A9", (("code", "café"),)),
    ("patient/Observation.rs?code=a%26b%3Dc%20d", (("code", "a&b=c d"),)),
    ("patient/Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes",
     (("code:in", "http://valueset.example.org/ValueSet/diabetes-codes"),)),
    ("patient/Observation.rs?patient.birthdate=1990", (("patient.birthdate", "1990"),)),
    ("patient/Observation.rs?_tag=a=b", (("_tag", "a=b"),)),
    ("patient/Observation.rs?category=a&category=b", (("category", "a"), ("category", "b"))),
    ("system/*.rs?_security=R", (("_security", "R"),)),
])
def test_parse_params(token, params):
    scope = one(token)
    assert scope.params == params and scope.version == 2 and scope.text == token


@pytest.mark.parametrize("token", ["openid", "fhirUser", "launch", "launch/patient", "foo", "",
                                   "https://example.org/scope", "patients/Observation.rs", "patient"])
def test_parse_scope_none_for_non_resource_tokens(token):
    assert parse_scope(token) is None


FLAGS = {"launch": "launch", "launch/patient": "launch_patient", "launch/encounter": "launch_encounter",
         "openid": "openid", "fhirUser": "fhir_user", "profile": "profile", "email": "email",
         "offline_access": "offline_access", "online_access": "online_access"}


@pytest.mark.parametrize("token, field", FLAGS.items())
def test_each_flag_sets_only_its_field(token, field):
    parsed = parse_scopes(token)
    assert getattr(parsed, field) is True
    assert [f for f in FLAGS.values() if getattr(parsed, f)] == [field]
    assert parsed.resource == () and parsed.other == ()
    assert parsed.text() == token


def test_scope_set_fields_text_and_contexts():
    parsed = parse_scopes(f"openid fhirUser launch/patient patient/*.rs user/Observation.read "
                          f"offline_access foo bar patient/Observation.rs?category={LAB}")
    assert parsed.openid and parsed.fhir_user and parsed.launch_patient and parsed.offline_access
    assert not (parsed.launch or parsed.launch_encounter or parsed.profile or parsed.email or parsed.online_access)
    assert [s.text for s in parsed.resource] == ["patient/*.rs", "user/Observation.read",
                                                 f"patient/Observation.rs?category={LAB}"]
    assert parsed.other == ("foo", "bar")
    assert parsed.contexts() == {"patient", "user"}


def test_text_keeps_request_order_and_drops_duplicates():
    parsed = parse_scopes("  foo\tpatient/*.rs \n openid  launch/patient foo openid patient/*.rs\r\n")
    assert parsed.text() == "foo patient/*.rs openid launch/patient"
    assert parse_scopes(parsed.text()) == parsed


def test_text_of_hand_built_scope_set():
    built = ScopeSet(resource=(one("user/*.rs"),), openid=True, other=("x",))
    assert built.text() == "user/*.rs openid x"


def test_equality_ignores_order():
    assert parse_scopes("openid patient/*.rs") == parse_scopes("patient/*.rs openid")


def test_empty_and_blank_strings():
    for text in ["", "   ", "\t\n"]:
        parsed = parse_scopes(text)
        assert parsed == ScopeSet() and parsed.text() == "" and parsed.contexts() == set()


def test_scope_set_is_always_truthy():
    # Callers write `approved or requested`; an empty approval must not fall back to the request.
    assert bool(ScopeSet()) is True


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("token, reason", [
    ("patient/Observation.xyz", "'xyz' is not a permission: use v2 letters in the order c, r, u, d, s "
                                "(e.g. 'rs') or v1 'read', 'write' or '*'"),
    ("patient/Observation.sr", "v2 permission letters must appear in the order c, r, u, d, s: write 'rs', not 'sr'"),
    ("patient/Observation.rr", "permission letter 'r' appears more than once in 'rr'"),
    ("patient/Observation.crudss", "permission letter 's' appears more than once in 'crudss'"),
    ("patient/.rs", "missing resource type between 'patient/' and '.' (a FHIR type such as Observation, or *)"),
    ("patient/Observation.rs?category", "search parameter 'category' has no '=value'"),
    ("launch/foo", "unknown launch context 'foo': this server offers launch/patient and launch/encounter"),
    ("launch/", "nothing after 'launch/': use launch/patient or launch/encounter"),
    ("launch/Patient", "launch context names are lower case: 'launch/patient'"),
    ("Launch/patient", "'Launch' must be lower case: 'launch/patient'"),
    ("patient/Observation.cruds*", "'cruds*' mixes v1 permissions (read, write, *) with v2 letters; use one or the other"),
    ("patient/Observation.readrs", "'readrs' mixes v1 permissions"),
    ("patient/Observation.*rs", "'*rs' mixes v1 permissions"),
    ("patient/Observation.RS", "permissions are lower case: 'rs', not 'RS'"),
    ("patient/Observation.Read", "permissions are lower case: 'read', not 'Read'"),
    ("patient/observation.rs", "'observation' is not a FHIR resource type"),
    ("patient/Observation2.rs", "'Observation2' is not a FHIR resource type"),
    ("patient/**.rs", "'**' is not a FHIR resource type"),
    ("Patient/Observation.read", "the context 'Patient' must be lower case: 'patient/'"),
    ("SYSTEM/*.rs", "the context 'SYSTEM' must be lower case: 'system/'"),
    ("patient/Observation", "missing '.' and permissions after the resource type (e.g. 'patient/Observation.rs')"),
    ("patient/", "missing '.' and permissions after the resource type"),
    ("patient/Observation.", "missing permissions after '.'"),
    ("patient/Obs.er.rs", "more than one '.': the form is context/Type.permissions"),
    ("patient/Observation.read?category=x", "search-parameter limits need v2 permissions such as '.rs', not v1 '.read'"),
    ("patient/Observation.write?category=x", "search-parameter limits need v2 permissions such as '.cud', "
                                             "not v1 '.write'"),
    ("patient/Observation.rs?", "nothing after '?': add search parameters as name=value, or drop the '?'"),
    ("patient/Observation.rs?a=b&", "empty search parameter ('&' at an end, or two '&' in a row)"),
    ("patient/Observation.rs?a=b&&c=d", "empty search parameter"),
    ("patient/Observation.rs?=b", "search parameter '=b' has no name before '='"),
    ("patient/Observation.rs?category=", "search parameter 'category' has an empty value"),
    ("patient/Observation.rs?1abc=x", "'1abc' is not a search parameter name"),
    ("patient/Observation.rs?a=%zz", "'%' must be followed by two hex digits (found '%zz')"),
    ("patient/Observation.rs?a=abc%4", "'%' must be followed by two hex digits (found '%4')"),
    ("patient/Observation.rs?a=%ff", "percent-encoded '%ff' is not valid UTF-8"),
    ("patient/Observation.rs?a=%0A", "percent-encoded '%0A' decodes to a control character"),
    ("patient/Obsé.rs", "contains 'é', which OAuth scopes may not contain"),
    ('patient/Observation.rs?a="b"', "contains '\"', which OAuth scopes may not contain"),
    ("openid\x00", "contains '\\x00'"),
    ("foo\\bar", "contains '\\\\'"),
    ("héllo", "contains 'é'"),
])
def test_errors_have_precise_reasons(token, reason):
    with pytest.raises(ScopeError) as caught:
        parse_scopes(f"openid {token} offline_access")
    assert caught.value.scope == token
    assert caught.value.reason.startswith(reason)
    assert str(caught.value) == f"invalid scope {token!r}: {caught.value.reason}"
    assert isinstance(caught.value, ValueError)


def test_parse_scope_raises_for_malformed_resource_scope():
    with pytest.raises(ScopeError, match="order c, r, u, d, s"):
        parse_scope("user/Observation.sr")


def test_non_string_input_is_a_scope_error():
    with pytest.raises(ScopeError, match="must be given as a string"):
        parse_scopes(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["\ud800", "patient/Observation.rs?a=\udfff", "\u00a0", "openid\u2003fhirUser",
                                  "🙂", "patient/*.rs\u200b", "x" * 100_000, "patient/" + "A" * 10_000 + ".rs"])
def test_odd_unicode_gives_scope_set_or_scope_error(text):
    try:
        result = parse_scopes(text)
    except ScopeError as exc:
        str(exc).encode("utf-8")  # the message can go into an HTTP response as is
    else:
        assert isinstance(result, ScopeSet)


# --- interactions and grants -----------------------------------------------------------------

@pytest.mark.parametrize("interaction, letter", [
    ("read", "r"), ("vread", "r"), ("history", "r"), ("history-instance", "r"), ("search", "s"),
    ("search-type", "s"), ("search-system", "s"), ("history-type", "s"), ("history-system", "s"),
    ("create", "c"), ("update", "u"), ("patch", "u"), ("delete", "d"),
])
def test_interaction_letter(interaction, letter):
    assert interaction_letter(interaction) == letter


@pytest.mark.parametrize("bad", ["", "READ", "transaction", "operation", None])
def test_interaction_letter_unknown(bad):
    with pytest.raises(ValueError, match="unknown FHIR interaction"):
        interaction_letter(bad)


@pytest.mark.parametrize("permissions", [*V1_LETTERS, *ALL_V2])
@pytest.mark.parametrize("letter", "cruds")
def test_grants_truth_table(permissions, letter):
    expected = letter in V1_LETTERS.get(permissions, set(permissions))
    scope = one(f"patient/Observation.{permissions}")
    assert grants(scope, "patient", "Observation", letter) is expected
    wildcard = one(f"patient/*.{permissions}")
    assert grants(wildcard, "patient", "Condition", letter) is expected
    assert grants(scope, "patient", "Condition", letter) is False  # other type
    assert grants(scope, "user", "Observation", letter) is False  # other context


def test_grants_ignores_params_and_rejects_bad_letters():
    assert grants(one(f"patient/Observation.rs?category={LAB}"), "patient", "Observation", "s")
    for bad in ["read", "x", "", "R"]:
        with pytest.raises(ValueError, match="one of c, r, u, d, s"):
            grants(one("patient/*.rs"), "patient", "Observation", bad)


# --- access ----------------------------------------------------------------------------------

def test_access_denied_names_missing_scope():
    granted = scopes("patient/Condition.rs user/Observation.rs")
    assert access(granted, "patient", "Observation", "s") == Access(False, (), "patient/Observation.rs")
    assert access(granted, "patient", "Observation", "r").missing == "patient/Observation.rs"
    assert access(granted, "patient", "Observation", "c").missing == "patient/Observation.c"
    assert access((), "system", "Patient", "d") == Access(False, (), "system/Patient.d")


def test_access_unrestricted():
    assert access(scopes("patient/Observation.read"), "patient", "Observation", "r") == Access(True, None, "")
    assert access(scopes("patient/*.rs"), "patient", "Observation", "s") == Access(True, None, "")
    assert not access(scopes("patient/Observation.read"), "patient", "Observation", "u").allowed


def test_access_granular_filters_are_or_of_and_groups():
    granted = scopes(f"patient/Observation.rs?category={LAB} patient/Observation.rs?category={VITALS}&code=x "
                     f"patient/Condition.rs?category={HEALTH_CONCERN} patient/Observation.s?category={SDOH}")
    result = access(granted, "patient", "Observation", "s")
    assert result == Access(True, ((("category", LAB),), (("category", VITALS), ("code", "x")),
                                   (("category", SDOH),)), "")
    assert access(granted, "patient", "Observation", "r").filters == ((("category", LAB),),
                                                                      (("category", VITALS), ("code", "x")))


def test_access_unrestricted_scope_wins_over_granular():
    for order in [f"patient/Observation.rs?category={LAB} patient/Observation.read",
                  f"patient/Observation.read patient/Observation.rs?category={LAB}",
                  f"patient/Observation.rs?category={LAB} patient/*.r"]:
        assert access(scopes(order), "patient", "Observation", "r") == Access(True, None, "")


def test_access_granular_scope_of_other_letter_does_not_restrict():
    # The unfiltered scope only gives read; search is limited to labs.
    granted = scopes(f"patient/Observation.r patient/Observation.s?category={LAB}")
    assert access(granted, "patient", "Observation", "r").filters is None
    assert access(granted, "patient", "Observation", "s").filters == ((("category", LAB),),)


def test_access_dedupes_identical_filter_groups_and_accepts_scope_sets():
    parsed = parse_scopes(f"patient/Observation.r?category={LAB} patient/Observation.rs?category={LAB}")
    assert access(parsed, "patient", "Observation", "r") == Access(True, ((("category", LAB),),), "")


def test_access_never_returns_empty_filters_when_allowed():
    for text in ["patient/*.rs", f"patient/Observation.rs?category={LAB}", f"patient/*.rs?category={LAB}"]:
        result = access(scopes(text), "patient", "Observation", "s")
        assert result.allowed and result.filters != ()


# --- refresh: is_narrower_or_equal -----------------------------------------------------------

@pytest.mark.parametrize("requested, granted, expected", [
    ("patient/Observation.rs openid", "openid patient/Observation.rs", True),
    ("", "patient/*.rs openid", True),
    ("patient/Observation.rs", "patient/Observation.cruds", True),
    ("patient/Observation.cruds", "patient/Observation.rs", False),
    ("patient/Observation.rs", "patient/Observation.read", True),
    ("patient/Observation.read", "patient/Observation.rs", True),
    ("patient/Observation.write", "patient/Observation.cud", True),
    ("patient/Observation.*", "patient/Observation.read patient/Observation.write", True),
    ("patient/Observation.*", "patient/Observation.read", False),
    ("patient/Observation.r", "patient/*.rs", True),
    ("patient/*.r", "patient/Observation.rs", False),
    ("patient/Observation.rs", "patient/Observation.r patient/Observation.s", True),
    ("patient/Observation.rs", "patient/Observation.r patient/Condition.s", False),
    ("patient/Observation.rs", "user/Observation.rs", False),
    ("user/*.rs", "patient/*.rs", False),
    (f"patient/Observation.rs?category={LAB}", "patient/Observation.rs", True),
    (f"patient/Observation.rs?category={LAB}", f"patient/Observation.rs?category={LAB}", True),
    (f"patient/Observation.rs?category={LAB}", f"patient/Observation.rs?category={VITALS}", False),
    ("patient/Observation.rs", f"patient/Observation.rs?category={LAB}", False),
    (f"patient/Observation.rs?category={LAB}&code=x", f"patient/Observation.rs?category={LAB}", True),
    (f"patient/Observation.rs?code=x&category={LAB}", f"patient/Observation.rs?category={LAB}&code=x", True),
    (f"patient/Observation.rs?category={LAB}", f"patient/Observation.rs?category={LAB}&code=x", False),
    (f"patient/Observation.rs?category={LAB}", f"patient/*.rs?category={LAB}", True),
    ("patient/Observation.rs", f"patient/Observation.r patient/Observation.s?category={LAB}", False),
    ("openid", "fhirUser", False),
    ("offline_access", "online_access", False),
    ("launch/patient", "launch", False),
    ("foo", "foo openid", True),
    ("foo bar", "foo", False),
])
def test_is_narrower_or_equal(requested, granted, expected):
    assert is_narrower_or_equal(parse_scopes(requested), parse_scopes(granted)) is expected


@pytest.mark.parametrize("flag", FLAGS)
def test_every_flag_must_have_been_granted(flag):
    others = " ".join(f for f in FLAGS if f != flag)
    assert not is_narrower_or_equal(parse_scopes(flag), parse_scopes(others))
    assert is_narrower_or_equal(parse_scopes(flag), parse_scopes(f"{others} {flag}"))


# --- restrict_to, to_v2 ----------------------------------------------------------------------

def test_restrict_to_drops_other_contexts_and_keeps_the_rest():
    parsed = parse_scopes("openid system/*.rs patient/*.rs user/Observation.read launch/patient foo")
    kept = restrict_to(parsed, {"patient"})
    assert kept.text() == "openid patient/*.rs launch/patient foo"
    assert kept.openid and kept.launch_patient and kept.other == ("foo",)
    assert restrict_to(parsed, {"patient", "user"}).contexts() == {"patient", "user"}
    assert restrict_to(parsed, set()).resource == ()
    assert parsed.contexts() == {"system", "patient", "user"}  # the original is untouched


@pytest.mark.parametrize("v1, v2", [
    ("patient/Observation.read", "patient/Observation.rs"),
    ("user/*.write", "user/*.cud"),
    ("system/Patient.*", "system/Patient.cruds"),
])
def test_to_v2(v1, v2):
    converted = to_v2(one(v1))
    assert converted.text == v2 and converted.version == 2
    assert converted == one(v2)


def test_to_v2_leaves_v2_alone():
    scope = one(f"patient/Observation.rs?category={LAB}")
    assert to_v2(scope) is scope


# --- consent page wording --------------------------------------------------------------------

@pytest.mark.parametrize("token, text", [
    (f"patient/Observation.rs?category={LAB}", "Read and search your observations (laboratory)"),
    ("patient/Observation.read", "Read and search your observations"),
    ("user/Condition.cruds", "Create, read, update, delete and search all patients' conditions"),
    ("user/Condition.*", "Create, read, update, delete and search all patients' conditions"),
    ("system/Condition.write", "Create, update and delete all patients' conditions"),
    ("patient/*.rs", "Read and search any resource in your record"),
    ("user/*.cruds", "Create, read, update, delete and search any resource for all patients"),
    ("patient/Observation.r", "Read your observations"),
    ("patient/Observation.s", "Search your observations"),
    ("patient/Observation.cu", "Create and update your observations"),
    (f"patient/Observation.rs?category={VITALS}", "Read and search your observations (vital signs)"),
    (f"patient/Observation.rs?category={SDOH}", "Read and search your observations (social determinants of health)"),
    (f"patient/Condition.rs?category={HEALTH_CONCERN}", "Read and search your conditions (health concern)"),
    (f"patient/Condition.rs?category={COND}|problem-list-item", "Read and search your conditions (problem list)"),
    (f"patient/*.rs?category={LAB}", "Read and search any resource in your record (laboratory)"),
    ("patient/Observation.rs?code=http://loinc.org|8867-4",
     "Read and search your observations (code=http://loinc.org|8867-4)"),
    (f"patient/Condition.rs?category={LAB}", f"Read and search your conditions (category={LAB})"),
    ("patient/AllergyIntolerance.rs", "Read and search your allergies"),
    ("patient/Patient.rs", "Read and search your demographics"),
    ("patient/DiagnosticReport.rs", "Read and search your diagnostic reports"),
    ("patient/ResearchStudy.rs", "Read and search your research studies"),
    ("patient/Immunization.rs", "Read and search your immunizations"),
])
def test_describe(token, text):
    assert describe(one(token)) == text


@pytest.mark.parametrize("token, text", [
    ("openid", "Know who you are (your identity)"),
    ("fhirUser", "Know which person in the record system you are"),
    ("profile", "See your name and basic profile"),
    ("email", "See your email address"),
    ("launch", "Use the patient and context open in the EHR when it was launched"),
    ("launch/patient", "Choose a patient"),
    ("launch/encounter", "Choose an encounter (visit)"),
    ("offline_access", "Stay connected when you are not using the app"),
    ("online_access", "Stay connected while you are using the app"),
    ("foo", "Unrecognised scope 'foo' (it grants nothing here)"),
    ("launch/foo", "Unrecognised scope 'launch/foo' (it grants nothing here)"),
    ("patient/Observation.sr", "Unrecognised scope 'patient/Observation.sr' (it grants nothing here)"),
    ("patient/Observation.rs", "Read and search your observations"),
])
def test_describe_other(token, text):
    assert describe_other(token) == text


# --- granular categories ---------------------------------------------------------------------

def test_granular_categories_systems():
    observation = {code: value for value, code, _ in GRANULAR_CATEGORIES["Observation"]}
    assert observation == {
        "laboratory": f"{OBS}|laboratory", "vital-signs": f"{OBS}|vital-signs",
        "social-history": f"{OBS}|social-history", "survey": f"{OBS}|survey", "sdoh": SDOH,
        "clinical-test": "http://hl7.org/fhir/us/core/CodeSystem/us-core-observation-category|clinical-test",
        "imaging": f"{OBS}|imaging", "procedure": f"{OBS}|procedure", "exam": f"{OBS}|exam",
        "therapy": f"{OBS}|therapy", "activity": f"{OBS}|activity",
    }
    condition = {code: value for value, code, _ in GRANULAR_CATEGORIES["Condition"]}
    assert condition == {"problem-list-item": f"{COND}|problem-list-item",
                         "encounter-diagnosis": f"{COND}|encounter-diagnosis", "health-concern": HEALTH_CONCERN}
    for table in GRANULAR_CATEGORIES.values():
        for value, code, display in table:
            assert value.endswith(f"|{code}") and display and display == display.lower()


def test_granular_options_for_observation():
    options = granular_options(one("patient/Observation.rs"))
    assert [o.text for o in options] == [f"patient/Observation.rs?category={value}"
                                         for value, _, _ in GRANULAR_CATEGORIES["Observation"]]
    assert options[0].text == f"patient/Observation.rs?category={LAB}"
    for option in options:
        assert option == one(option.text)  # each option is exactly what parsing its text gives


def test_granular_options_from_v1_and_for_condition():
    options = granular_options(one("user/Condition.read"))
    assert [o.text for o in options] == [f"user/Condition.rs?category={COND}|problem-list-item",
                                         f"user/Condition.rs?category={COND}|encounter-diagnosis",
                                         f"user/Condition.rs?category={HEALTH_CONCERN}"]
    assert all(o.version == 2 and o.permissions == frozenset("rs") for o in options)
    assert describe(options[2]) == "Read and search all patients' conditions (health concern)"


@pytest.mark.parametrize("token", ["patient/Patient.rs", "patient/*.rs", f"patient/Observation.rs?category={LAB}",
                                   "patient/Observation.rs?code=x"])
def test_granular_options_empty(token):
    assert granular_options(one(token)) == []


def test_granular_options_are_narrower_than_their_scope():
    whole = parse_scopes("patient/Observation.rs")
    for option in granular_options(whole.resource[0]):
        assert is_narrower_or_equal(parse_scopes(option.text), whole)
        assert not is_narrower_or_equal(whole, parse_scopes(option.text))


# --- fuzz ------------------------------------------------------------------------------------

FRAGMENTS = ["patient", "user", "system", "launch", "Patient", "/", ".", "*", "?", "&", "=", "%", "%2", "%41",
             "%C3%A9", "%ff", "Observation", "Condition", "observation", "read", "write", "c", "r", "u", "d",
             "s", "rs", "cruds", "sr", "category", "http://loinc.org|1234-5", "|", " ", "\t", "\n", "openid",
             "fhirUser", "offline_access", "foo", "é", "\u00a0", "\ud800", "\x00", '"', "\\", "🙂", "1", "_", ":"]


def random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 12)):
        if rng.random() < 0.85:
            parts.append(rng.choice(FRAGMENTS))
        else:
            parts.append(chr(rng.randint(0, 0x2FFF)))
    return "".join(parts)


def test_fuzz_only_scope_errors_and_consistent_results():
    rng = random.Random(20240611)
    parsed_ok = failed = 0
    for _ in range(20_000):
        text = random_text(rng)
        try:
            result = parse_scopes(text)
        except ScopeError as exc:
            failed += 1
            assert exc.reason and str(exc)
            continue
        parsed_ok += 1
        assert parse_scopes(result.text()) == result
        assert is_narrower_or_equal(result, result)
        for token in result.other:
            describe_other(token)
        for scope in result.resource:
            describe(scope)
            assert scope == parse_scope(scope.text)
            v2 = to_v2(scope)
            assert parse_scope(v2.text) == v2
            for option in granular_options(scope):
                assert parse_scope(option.text) == option
            for letter in "cruds":
                outcome = access(result.resource, scope.context, "Observation", letter)
                assert outcome.allowed == any(grants(s, scope.context, "Observation", letter) for s in result.resource)
    assert parsed_ok > 1000 and failed > 1000  # the generator reaches both outcomes


def test_fuzz_params_round_trip_through_to_v2_encoding():
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(0x20, 0x7F)] + ["é", "ß", "中", "🙂"]
    for _ in range(2_000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        scope = ResourceScope("patient", "Observation", frozenset("rs"), (("code", value),), 1, "hand-built")
        rebuilt = parse_scope(to_v2(scope).text)
        assert rebuilt is not None and rebuilt.params == (("code", value),)
