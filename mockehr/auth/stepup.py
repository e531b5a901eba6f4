"""Authentication levels and step-up (a second factor), as pure functions.

Two levels, advertised as `acr_values_supported`:

| acr | how | amr |
|---|---|---|
| `urn:mockehr:loa:1` | signed in (the login page, a session, an EHR launch, auto-approve) | `["pwd"]` |
| `urn:mockehr:loa:2` | signed in, then the second-factor page's one-time code | `["pwd", "otp"]` |

A request asks for a level with `acr_values` (a space-separated list of acceptable values, in
order of preference) or with the claims request `{"id_token": {"acr": {"essential": true,
"values": [...]}}}` (OIDC Core 5.5.1.1). The level needed is the lowest one any acceptable value
names: `acr_values=urn:mockehr:loa:2` needs the second factor, `acr_values=urn:mockehr:loa:1
urn:mockehr:loa:2` does not. Unknown values are ignored (acr_values is voluntary), unless the
claims request makes acr essential and names no known value: that request cannot be met
(`unmet_authentication_requirements`). The `step-up` fault forces level 2 for the scopes it names.

The demo second factor is a fixed code, shown on the page: this is a test EHR.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import orjson

LOA1 = "urn:mockehr:loa:1"
LOA2 = "urn:mockehr:loa:2"
LEVELS = {LOA1: 1, LOA2: 2}
ACR_VALUES = (LOA1, LOA2)
AMR = {1: ("pwd",), 2: ("pwd", "otp")}
DEMO_CODE = "123456"


class AcrProblem(ValueError):
    """acr_values or the claims request is malformed; the text says how (an invalid_request)."""


@dataclass(frozen=True)
class AcrRequest:
    """The acr the client asked for: known values in order of preference, the unknown ones aside."""

    values: tuple[str, ...] = ()
    essential: bool = False
    unknown: tuple[str, ...] = ()

    @property
    def asked(self) -> bool:
        return bool(self.values or self.unknown)

    @property
    def level(self) -> int:
        """The level that satisfies the request: the lowest any acceptable known value names (1 if none)."""
        return min((LEVELS[v] for v in self.values), default=1)

    def unmet(self) -> str | None:
        """Why the request can never be met, or None."""
        if self.essential and not self.values:
            return (f"the claims request makes acr essential with values {', '.join(self.unknown) or '(none)'}, "
                    f"none of which this server supports ({', '.join(ACR_VALUES)})")
        return None


def parse_acr(acr_values: str | None, claims: str | None) -> AcrRequest:
    """acr_values and the claims request's id_token.acr, merged; AcrProblem if malformed."""
    wanted: list[str] = []
    essential = False
    if acr_values is not None:
        wanted += acr_values.split()
    if claims:
        try:
            body = orjson.loads(claims)
        except orjson.JSONDecodeError:
            raise AcrProblem("claims must be a JSON object (OIDC Core 5.5); it does not parse") from None
        if not isinstance(body, dict):
            raise AcrProblem("claims must be a JSON object (OIDC Core 5.5)")
        id_token = body.get("id_token")
        if id_token is not None and not isinstance(id_token, dict):
            raise AcrProblem("claims.id_token must be a JSON object")
        acr = (id_token or {}).get("acr")
        if acr is not None:
            if not isinstance(acr, dict):
                raise AcrProblem('claims.id_token.acr must be null or an object like {"essential": true, '
                                 f'"values": ["{LOA2}"]}}')
            essential = acr.get("essential") is True
            named = acr.get("values", [acr["value"]] if "value" in acr else [])
            if not isinstance(named, list) or not all(isinstance(v, str) for v in named):
                raise AcrProblem("claims.id_token.acr.values must be an array of strings")
            wanted += named
    wanted = list(dict.fromkeys(wanted))
    return AcrRequest(tuple(v for v in wanted if v in LEVELS), essential, tuple(v for v in wanted if v not in LEVELS))


def level_of(amr) -> int:
    """The level a sign-in reached, from its amr."""
    return 2 if "otp" in (amr or ()) else 1


def acr_claim(request: AcrRequest, level: int) -> str:
    """The id_token's acr: the strongest requested value this sign-in satisfies, else the level reached."""
    satisfied = [v for v in request.values if LEVELS[v] <= level]
    if satisfied:
        return max(satisfied, key=LEVELS.__getitem__)
    return LOA2 if level >= 2 else LOA1


def check_code(entered: str | None) -> bool:
    """The demo one-time code, spaces and dashes ignored ("123 456")."""
    digits = "".join(ch for ch in (entered or "") if ch not in " -\t")
    return hmac.compare_digest(digits.encode(), DEMO_CODE.encode())
