"""Time zones and currencies: what an event or an organizer may choose, and money for people.

Money is stored as integer minor units (``*_cents``); people read and type it in
the currency's units (25.00 EUR, 2500 JPY, 2.500 KWD), with as many decimals as
ISO 4217 gives the currency.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils import dateformat
from django.utils.translation import gettext_lazy as _

# Active ISO 4217 currency codes.
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
    GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
    NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG
    XOF XPF YER ZAR ZMW ZWG
    """.split()  # noqa: SIM905 (a block of codes reads better than a 180-item list)
)


# ISO 4217 minor units where they are not 2.
_ZERO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
_MINOR_UNITS = {
    **dict.fromkeys(_ZERO_DECIMALS.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
}

# IANA time zone names, read once: zoneinfo.available_timezones() walks the tz database on every call.
TIME_ZONES = frozenset(zoneinfo.available_timezones())

CURRENCY_CHOICES = [(code, code) for code in sorted(ISO_4217)]
TIME_ZONE_CHOICES = [(name, name.replace("_", " ")) for name in sorted(TIME_ZONES)]


def validate_time_zone(value: str) -> None:
    if value not in TIME_ZONES:
        raise ValidationError(_("%(value)s is not an IANA time zone."), code="invalid", params={"value": value})


def validate_currency(value: str) -> None:
    if value not in ISO_4217:
        raise ValidationError(_("%(value)s is not an ISO 4217 currency code."), code="invalid", params={"value": value})


def minor_units(currency: str) -> int:
    """Decimals of the currency's unit (2 for EUR, 0 for JPY, 3 for KWD)."""
    return _MINOR_UNITS.get(currency, 2)


def to_major(cents: int, currency: str) -> Decimal:
    """Minor units -> the currency's units, with its decimals: 2500 EUR cents -> Decimal("25.00")."""
    places = minor_units(currency)
    return (Decimal(cents) / (10**places)).quantize(Decimal(1).scaleb(-places))


def to_minor(amount: Decimal, currency: str) -> int:
    """The currency's units -> minor units; more decimals than the currency has are refused."""
    places = minor_units(currency)
    try:
        scaled = Decimal(amount).scaleb(places)
    except InvalidOperation as exc:
        raise ValidationError(_("Enter an amount."), code="invalid") from exc
    if scaled != scaled.to_integral_value(rounding=ROUND_HALF_UP):
        raise ValidationError(
            _("%(currency)s has %(places)d decimal places.") % {"currency": currency, "places": places},
            code="invalid",
        )
    return int(scaled)


def format_money(cents: int, currency: str) -> str:
    """For people: ``25.00 EUR``."""
    return f"{to_major(cents, currency)} {currency}"


def local_time(moment: datetime, zone: str) -> datetime:
    """A stored (UTC) moment as the clock on the wall of ``zone`` shows it."""
    return moment.astimezone(zoneinfo.ZoneInfo(zone))


def format_local_time(moment: datetime, zone: str) -> str:
    """For people, in the event's zone with its name, whatever the server's or reader's zone:
    ``Sat 14 Mar 2026, 19:30 EDT (America/New_York)``. A buyer travelling to an event wants the
    time on the venue's clocks, and the zone name makes that explicit."""
    local = local_time(moment, zone)
    return f"{dateformat.format(local, 'D j M Y, H:i T')} ({zone})"
