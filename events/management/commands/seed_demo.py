"""``manage.py seed_demo``: demo accounts and a small catalogue for a first ``make run``.

A newcomer should land in an API and an admin that already have something in
them: an admin, an organizer with published events in real cities (and one
draft), and two attendees, all with a known demo password printed at the end.

Running it again is safe: accounts are found by email and events by
(organizer, slug); whatever exists is left exactly as it is, passwords
included, so a rerun creates and changes nothing. Because it creates accounts
with a known password, it refuses to run on anything but the embedded SQLite
database unless ``--force`` is given.

Everything is written through the account and catalogue services, so the demo
data obeys the same rules as data entered through the API or the admin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import services as account_services
from accounts.models import OrganizerProfile, User
from eventflow.api.errors import ApplicationError
from events import discounts, seats
from events import services as event_services
from events.models import Category, Event

# Clearly demo-only; printed at the end of every run. Override with --password or DEMO_PASSWORD.
DEFAULT_PASSWORD = "eventflow-demo-2026"  # noqa: S105 - public on purpose, demo accounts only
PASSWORD_ENV = "DEMO_PASSWORD"  # noqa: S105 - the variable's name, not a secret

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class DemoAccount:
    email: str
    name: str
    role: str  # a User.Role value


ADMIN = DemoAccount("admin@example.com", "Demo Admin", User.Role.ADMIN)
ORGANIZER = DemoAccount("organizer@example.com", "Demo Organizer", User.Role.ORGANIZER)
ATTENDEES = (
    DemoAccount("alice@example.com", "Alice Attendee", User.Role.ATTENDEE),
    DemoAccount("bob@example.com", "Bob Attendee", User.Role.ATTENDEE),
)
ACCOUNTS = (ADMIN, ORGANIZER, *ATTENDEES)
# Who bought the demo's tickets: accounts without a usable password (nobody signs in as them),
# so the attendee lists and sales have real-looking names.
DEMO_BUYERS = tuple(
    DemoAccount(f"{name.lower().replace(' ', '.')}@example.net", name, User.Role.ATTENDEE)
    for name in (
        "Grace Hopper",
        "Alan Turing",
        "Ada Byron",
        "Katherine Johnson",
        "Linus Pauling",
        "Hedy Lamarr",
        "Tim Berners-Lee",
        "Margaret Hamilton",
        "Dennis Ritchie",
        "Barbara Liskov",
        "Edsger Dijkstra",
        "Frances Allen",
        "Donald Knuth",
        "Radia Perlman",
        "Ken Thompson",
        "Sophie Wilson",
    )
)
ORGANIZER_DISPLAY_NAME = "Demo Live"


@dataclass(frozen=True)
class DemoTier:
    name: str
    price_cents: int
    capacity: int
    description: str = ""
    max_per_order: int = 10
    # Early-bird style tiers stop selling this long before the event starts.
    sales_end_before_start: timedelta | None = None
    # Tickets already sold when the demo starts (paid orders of the demo buyers, over the past days).
    sold: int = 0
    max_per_buyer: int | None = 20
    # A seated tier: a seat map of these rows (front to back) of ``seats_per_row`` each, which is its capacity.
    seat_rows: str = ""
    seats_per_row: int = 0


@dataclass(frozen=True)
class DemoEvent:
    slug: str
    title: str
    category: str
    description: str
    venue_name: str
    address: str
    city: str
    country: str
    latitude: str
    longitude: str
    timezone: str
    currency: str
    days_ahead: int  # from today, in the event's own time zone
    local_start: time
    duration: timedelta
    tiers: tuple[DemoTier, ...]
    refundable_days_before: int | None = 2
    publish: bool = True
    discount_code: str = ""  # a 10 % code, 100 uses, for every tier


# Real venues with real coordinates, spread over the coming weeks, so search,
# `near=` and the date filters have something to find.
EVENTS: tuple[DemoEvent, ...] = (
    DemoEvent(
        slug="late-show-stand-up-new-york",
        title="Late Show: Stand-up in the Village",
        category=Category.COMEDY,
        description="Five comics, one tiny basement stage, no phones. A New York institution after dark.",
        venue_name="Comedy Cellar",
        address="117 MacDougal St, New York, NY 10012",
        city="New York",
        country="US",
        latitude="40.730200",
        longitude="-74.000400",
        timezone="America/New_York",
        currency="USD",
        days_ahead=9,
        local_start=time(21, 30),
        duration=timedelta(hours=2),
        tiers=(
            DemoTier("General admission", 2500, 115, "Shared tables; two-drink minimum at the venue.", sold=40),
            DemoTier(
                "Front row (nearly sold out)",
                4500,
                12,
                "Only a handful of seats left right by the stage.",
                max_per_order=2,
                sold=10,
            ),
        ),
    ),
    DemoEvent(
        slug="neon-nights-berlin",
        title="Neon Nights: Electronic Live Sets",
        category=Category.MUSIC,
        description="Three live electronic acts and a visual show in Kreuzberg's big tent, until late.",
        venue_name="Tempodrom",
        address="Möckernstraße 10, 10963 Berlin",
        city="Berlin",
        country="DE",
        latitude="52.501500",
        longitude="13.380700",
        timezone="Europe/Berlin",
        currency="EUR",
        days_ahead=12,
        local_start=time(20, 0),
        duration=timedelta(hours=5),
        tiers=(
            DemoTier("Standing", 3900, 1500, sold=60),
            DemoTier("Balcony", 5900, 300, "Seated balcony with a view over the whole stage.", sold=24),
        ),
    ),
    DemoEvent(
        slug="data-visualisation-workshop-london",
        title="Data Visualisation Workshop",
        category=Category.WORKSHOP,
        description="A hands-on day turning messy spreadsheets into clear charts. Bring a laptop; lunch included.",
        venue_name="Southbank Centre",
        address="Belvedere Road, London SE1 8XX",
        city="London",
        country="GB",
        latitude="51.505500",
        longitude="-0.116500",
        timezone="Europe/London",
        currency="GBP",
        days_ahead=19,
        local_start=time(10, 0),
        duration=timedelta(hours=6),
        tiers=(
            DemoTier("Full day", 12000, 30, sold=12),
            DemoTier("Student", 4500, 10, "Bring a valid student card.", max_per_order=1, sold=4),
        ),
    ),
    DemoEvent(
        slug="le-petit-prince-paris",
        title="Le Petit Prince",
        category=Category.THEATRE,
        description="Saint-Exupéry's tale on stage, in French with English surtitles. Suitable from age 8.",
        venue_name="Théâtre du Châtelet",
        address="1 Place du Châtelet, 75001 Paris",
        city="Paris",
        country="FR",
        latitude="48.857700",
        longitude="2.346900",
        timezone="Europe/Paris",
        currency="EUR",
        days_ahead=26,
        local_start=time(19, 30),
        duration=timedelta(hours=2, minutes=30),
        tiers=(
            DemoTier("Orchestra", 6500, 400, sold=36),
            DemoTier("Balcony", 3500, 250, sold=20),
        ),
    ),
    DemoEvent(
        slug="street-food-weekend-amsterdam",
        title="Street Food Weekend",
        category=Category.FOOD,
        description="Forty food trucks, local brewers and live music in the old gasworks park. Entry is free.",
        venue_name="Westergasfabriek",
        address="Pazzanistraat 37, 1014 DB Amsterdam",
        city="Amsterdam",
        country="NL",
        latitude="52.386400",
        longitude="4.874300",
        timezone="Europe/Amsterdam",
        currency="EUR",
        days_ahead=40,
        local_start=time(12, 0),
        duration=timedelta(hours=10),
        tiers=(
            DemoTier("Free entry", 0, 2000, "Register for free to skip the queue at the gate.", sold=60),
            DemoTier("Tasting pass", 2500, 300, "Ten tasting tokens and a festival glass.", sold=20),
        ),
        refundable_days_before=None,
    ),
    DemoEvent(
        slug="python-django-day-lisbon",
        title="Python & Django Day",
        category=Category.CONFERENCE,
        description="A single-track day of talks on Python and Django in production, with lunch by the river.",
        venue_name="Centro Cultural de Belém",
        address="Praça do Império, 1449-003 Lisboa",
        city="Lisbon",
        country="PT",
        latitude="38.695500",
        longitude="-9.208500",
        timezone="Europe/Lisbon",
        currency="EUR",
        days_ahead=54,
        local_start=time(9, 0),
        duration=timedelta(hours=9),
        tiers=(
            DemoTier(
                "Early bird",
                14900,
                100,
                "Until three weeks before the event.",
                sales_end_before_start=timedelta(days=21),
                sold=80,
            ),
            DemoTier("Regular", 24900, 400, sold=30),
            DemoTier("Student", 4900, 50, "Bring a valid student card.", max_per_order=1, sold=6),
        ),
        refundable_days_before=14,
    ),
    DemoEvent(
        slug="night-run-10k-barcelona",
        title="Barcelona Night Run 10K",
        category=Category.SPORTS,
        description="A 10 km loop through the old town after dark, starting and finishing at the Arc de Triomf.",
        venue_name="Arc de Triomf",
        address="Passeig de Lluís Companys, 08003 Barcelona",
        city="Barcelona",
        country="ES",
        latitude="41.391000",
        longitude="2.180600",
        timezone="Europe/Madrid",
        currency="EUR",
        days_ahead=68,
        local_start=time(21, 0),
        duration=timedelta(hours=3),
        tiers=(
            DemoTier("10K runner", 3000, 2000, "Timing chip and finisher's medal.", max_per_order=4, sold=48),
            DemoTier("5K fun run", 1500, 1000, max_per_order=6, sold=30),
        ),
    ),
    # Reserved seating (a seat map, best available) and a discount code.
    DemoEvent(
        slug="string-quartet-hamburg",
        title="String Quartet at the Laeiszhalle",
        category=Category.MUSIC,
        description="Haydn, Ravel and Janáček from a young quartet. Reserved seats in the small hall.",
        venue_name="Laeiszhalle, Kleiner Saal",
        address="Johannes-Brahms-Platz, 20355 Hamburg",
        city="Hamburg",
        country="DE",
        latitude="53.556200",
        longitude="9.981200",
        timezone="Europe/Berlin",
        currency="EUR",
        days_ahead=33,
        local_start=time(19, 30),
        duration=timedelta(hours=2),
        tiers=(
            DemoTier(
                "Parterre",
                3900,
                0,
                "Reserved seats: pick yours, or get the best ones left.",
                max_per_order=6,
                sold=12,
                seat_rows="ABCDEFGH",
                seats_per_row=16,
            ),
            DemoTier("Standing", 1500, 80, "At the back of the hall.", sold=5),
        ),
        discount_code="QUARTET10",
    ),
    # A draft, so the admin and `?mine=true` show an event that is not public yet.
    DemoEvent(
        slug="chamber-music-evening-vienna",
        title="Chamber Music Evening",
        category=Category.MUSIC,
        description="Schubert and Brahms string quartets in the Mozart Hall. Programme to be confirmed.",
        venue_name="Wiener Konzerthaus",
        address="Lothringerstraße 20, 1030 Wien",
        city="Vienna",
        country="AT",
        latitude="48.201000",
        longitude="16.377100",
        timezone="Europe/Vienna",
        currency="EUR",
        days_ahead=95,
        local_start=time(19, 30),
        duration=timedelta(hours=2),
        tiers=(DemoTier("Seated", 4800, 700),),
        publish=False,
    ),
)


@dataclass
class SeededAccount:
    account: DemoAccount
    user: User
    created: bool
    password_works: bool


@dataclass
class SeedResult:
    accounts: list[SeededAccount] = field(default_factory=list)
    profile_created: bool = False
    events: list[tuple[Event, bool]] = field(default_factory=list)  # (event, created now)

    @property
    def created_count(self) -> int:
        created = [a.created for a in self.accounts] + [self.profile_created] + [c for _event, c in self.events]
        return sum(created)


# --- Seeding ------------------------------------------------------------------------


def _ensure_account(account: DemoAccount, password: str) -> SeededAccount:
    """Find the account by email, or create it. An existing password is never reset, only checked."""
    user = User.objects.filter(email=account.email).first()
    if user is not None:
        # check_password() from hashers, not user.check_password(): the latter may re-hash and save.
        usable = user.is_active and check_password(password, user.password)
        return SeededAccount(account, user, created=False, password_works=usable)
    if account.role == User.Role.ADMIN:
        user = User.objects.create_superuser(email=account.email, password=password, name=account.name)
    else:
        # Made-up addresses nobody reads: verified, no code emailed (demo buyers can buy at once).
        user = account_services.user_register(
            email=account.email, password=password, name=account.name, email_verified=True
        )
    return SeededAccount(account, user, created=True, password_works=True)


def _ensure_organizer_profile(user: User) -> tuple[OrganizerProfile, bool]:
    profile = OrganizerProfile.objects.filter(user=user).first()
    if profile is not None:
        return profile, False
    return account_services.organizer_profile_create(user=user, display_name=ORGANIZER_DISPLAY_NAME), True


def _event_fields(spec: DemoEvent, now: datetime) -> dict[str, Any]:
    """Dates relative to ``now``, at a sensible local hour in the event's own time zone."""
    zone = ZoneInfo(spec.timezone)
    day = now.astimezone(zone).date() + timedelta(days=spec.days_ahead)
    starts_at = datetime.combine(day, spec.local_start, tzinfo=zone)
    return {
        "slug": spec.slug,
        "title": spec.title,
        "category": spec.category,
        "description": spec.description,
        "venue_name": spec.venue_name,
        "address": spec.address,
        "city": spec.city,
        "country": spec.country,
        "latitude": Decimal(spec.latitude),
        "longitude": Decimal(spec.longitude),
        "starts_at": starts_at,
        "ends_at": starts_at + spec.duration,
        "timezone": spec.timezone,
        "currency": spec.currency,
        "refundable_until_hours_before": None
        if spec.refundable_days_before is None
        else spec.refundable_days_before * 24,
    }


def _ensure_buyers() -> list[User]:
    buyers = []
    for account in DEMO_BUYERS:
        user = User.objects.filter(email=account.email).first()
        if user is None:  # no usable password: nobody signs in as a demo buyer
            user = User.objects.create_user(email=account.email, password=None, name=account.name)
        buyers.append(user)
    return buyers


# Order sizes the demo buyers cycle through (each capped by the tier's max per order).
_ORDER_SIZES = (4, 2, 6, 3, 5, 2, 8, 1)


def _seed_sales(event: Event, spec: DemoEvent, buyers: list[User], regulars: list[User], now: datetime) -> None:
    """What a few weeks of selling leaves behind, through the same services as real sales: paid
    orders for each tier's ``sold`` tickets, paid over the last two weeks; one reservation still
    held (a buyer in the middle of checking out); one cancelled."""
    # orders build on events
    from orders.payments.services import payment_confirm, payment_start
    from orders.payments.test import TestProvider
    from orders.services import Line, order_cancel, order_place

    gateway = TestProvider()  # demo money: never a real gateway, whatever PAYMENT_PROVIDER says

    tiers = list(event.ticket_types.order_by("position", "pk"))
    count = 0
    for tier, tier_spec in zip(tiers, spec.tiers, strict=True):
        remaining = tier_spec.sold
        while remaining > 0:
            quantity = min(_ORDER_SIZES[count % len(_ORDER_SIZES)], tier.max_per_order, remaining)
            order = order_place(buyer=buyers[count % len(buyers)], event_id=event.pk, lines=[Line(tier.pk, quantity)])
            if order.status == order.Status.RESERVED:  # priced: its payment arrived on some day of the past two weeks
                paid_at = now - timedelta(days=(count * 5) % 14, hours=count % 11, minutes=count * 7 % 60)
                payment = payment_start(order=order, provider=gateway)
                payment_confirm(
                    payment=payment, amount_cents=payment.amount_cents, currency=payment.currency, at=paid_at
                )
            remaining -= quantity
            count += 1
    # a priced tier with room: where one buyer is checking out and another changed their mind
    priced = [(tier, tier.capacity - tier_spec.sold) for tier, tier_spec in zip(tiers, spec.tiers, strict=True)]
    open_tier = max((pair for pair in priced if pair[0].price_cents), key=lambda pair: pair[1], default=(None, 0))[0]
    if open_tier is not None:
        alice, bob = regulars
        order_place(buyer=bob, event_id=event.pk, lines=[Line(open_tier.pk, min(2, open_tier.max_per_order))])
        order_cancel(order=order_place(buyer=alice, event_id=event.pk, lines=[Line(open_tier.pk, 1)]))


def _ensure_event(organizer: OrganizerProfile, spec: DemoEvent, now: datetime) -> tuple[Event, bool]:
    """Find the event by (organizer, slug), or create it with its tiers and publish it.

    An existing event is left alone, whatever its state: someone may have edited,
    unpublished or cancelled it on purpose.
    """
    event = Event.objects.alive().filter(organizer=organizer, slug=spec.slug).first()
    if event is not None:
        return event, False
    event = event_services.event_create(organizer=organizer, **_event_fields(spec, now))
    for position, tier in enumerate(spec.tiers):
        sales_end = event.starts_at - tier.sales_end_before_start if tier.sales_end_before_start else None
        ticket_type = event_services.ticket_type_create(
            event=event,
            name=tier.name,
            description=tier.description,
            price_cents=tier.price_cents,
            capacity=tier.capacity,
            max_per_order=tier.max_per_order,
            max_per_buyer=tier.max_per_buyer,
            sales_end=sales_end,
            position=position,
            seated=bool(tier.seat_rows),
        )
        if tier.seat_rows:  # its capacity follows the seats
            seats.seats_create(
                event=event,
                rows=[
                    {"section": tier.name, "row": row, "number": str(number), "ticket_type": ticket_type.pk}
                    for row in tier.seat_rows
                    for number in range(1, tier.seats_per_row + 1)
                ],
            )
    if spec.discount_code:
        discounts.discount_code_create(event=event, code=spec.discount_code, percent_off=10, max_uses=100)
    if spec.publish:
        event = event_services.event_publish(event=event)
    return event, True


@transaction.atomic
def seed_demo(*, password: str, now: datetime | None = None) -> SeedResult:
    """Create whatever part of the demo data is missing; all or nothing."""
    now = now or timezone.now()
    result = SeedResult(accounts=[_ensure_account(account, password) for account in ACCOUNTS])
    organizer = next(a.user for a in result.accounts if a.account is ORGANIZER)
    profile, result.profile_created = _ensure_organizer_profile(organizer)
    organizer.refresh_from_db()  # the profile service updated the role (and staff access) on its own copy
    result.events = [_ensure_event(profile, spec, now) for spec in EVENTS]
    buyers = _ensure_buyers()
    regulars = [a.user for a in result.accounts if a.account in ATTENDEES]
    from orders.confirmation import confirmations_suppressed  # orders build on events

    with confirmations_suppressed():  # demo buyers bought nothing: no confirmation emails for them
        for (event, created), spec in zip(result.events, EVENTS, strict=True):
            if created and event.status == Event.Status.PUBLISHED:
                _seed_sales(event, spec, buyers, regulars, now)
    return result


# --- The command ------------------------------------------------------------------------


def _format_price(cents: int, currency: str) -> str:
    # Every seeded currency has two minor digits.
    return _("free") if cents == 0 else f"{cents / 100:.2f} {currency}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


class Command(BaseCommand):
    help = (
        "Create demo accounts and events (idempotent). Refuses to run on anything but the "
        "embedded SQLite database unless --force is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            help=_("Password for new demo accounts (default: $%(env)s, else %(default)s).")
            % {"env": PASSWORD_ENV, "default": DEFAULT_PASSWORD},
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help=_("Seed even though the database is not the embedded SQLite one."),
        )
        parser.add_argument(
            "--base-url",
            default=DEFAULT_BASE_URL,
            help=_("Where the server answers, for the links printed at the end (make run passes its PORT)."),
        )

    def handle(self, *args: Any, password: str | None, force: bool, verbosity: int, **options: Any) -> None:
        self._refuse_unless_embedded(force=force)
        password = password or os.environ.get(PASSWORD_ENV) or DEFAULT_PASSWORD
        self._check_password(password)
        try:
            result = seed_demo(password=password)
        except ApplicationError as exc:
            raise CommandError(str(exc.detail)) from exc
        if verbosity > 0:
            self._report(result, password, base_url=options.get("base_url") or DEFAULT_BASE_URL)

    def _refuse_unless_embedded(self, *, force: bool) -> None:
        """Known passwords must never reach a real deployment by accident."""
        connection = connections[DEFAULT_DB_ALIAS]
        if connection.vendor == "sqlite" or force:
            return
        raise CommandError(
            _(
                "Refusing to seed demo accounts with a known password into the %(vendor)s database "
                "%(name)s: that is not the embedded SQLite default. Pass --force if this really is a "
                "throwaway database."
            )
            % {"vendor": connection.vendor, "name": settings.DATABASES[DEFAULT_DB_ALIAS].get("NAME")}
        )

    def _check_password(self, password: str) -> None:
        """The same validators as registration, so the printed password is one users could choose."""
        for account in ACCOUNTS:
            try:
                validate_password(password, user=User(email=account.email, name=account.name))
            except ValidationError as exc:
                raise CommandError(
                    _("The demo password is not acceptable: %(reasons)s") % {"reasons": " ".join(exc.messages)}
                ) from exc

    def _report(self, result: SeedResult, password: str, *, base_url: str) -> None:
        events = Event.objects.filter(pk__in=[event.pk for event, _created in result.events]).prefetch_related(
            "ticket_types"
        )
        by_pk = {event.pk: event for event in events}
        rows = []
        for seeded, created in result.events:
            event = by_pk[seeded.pk]
            tiers = list(event.ticket_types.all())
            prices = sorted(t.price_cents for t in tiers) or [0]
            price_range = " - ".join(
                _format_price(cents, event.currency) for cents in dict.fromkeys((prices[0], prices[-1]))
            )
            rows.append(
                [
                    _("new") if created else _("exists"),
                    event.get_status_display(),
                    event.starts_at.astimezone(ZoneInfo(event.timezone)).strftime("%Y-%m-%d %H:%M"),
                    event.city,
                    event.title,
                    str(len(tiers)),
                    price_range,
                    f"{sum(t.on_sale for t in tiers)}/{sum(t.capacity for t in tiers)}",
                ]
            )
        headers = [
            _("seed"),
            _("status"),
            _("starts (local)"),
            _("city"),
            _("event"),
            _("tiers"),
            _("price"),
            _("left"),
        ]
        self.stdout.write(_table(headers, rows))
        self.stdout.write("")

        rows = []
        for seeded in result.accounts:
            note = _("new") if seeded.created else _("exists")
            if not seeded.password_works:
                note = _("exists; inactive or its password was changed, left as it is")
            shown = password if seeded.password_works else "-"
            rows.append([seeded.user.get_role_display(), seeded.user.email, shown, note])
        self.stdout.write(_table([_("role"), _("email"), _("password"), _("seed")], rows))
        self.stdout.write("")
        base = base_url.rstrip("/")
        links = {"admin": f"{base}/admin/", "docs": f"{base}/api/docs"}
        self.stdout.write(_("Admin: %(admin)s   API docs: %(docs)s") % links)

        created = result.created_count
        if created:
            done = ngettext(
                "Demo data ready: %(count)d object created.", "Demo data ready: %(count)d objects created.", created
            )
            self.stdout.write(self.style.SUCCESS(done % {"count": created}))
        else:
            self.stdout.write(self.style.SUCCESS(_("Demo data already present; nothing created.")))
