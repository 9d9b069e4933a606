"""The reader's side of the OpenAPI document: summaries, tag order, request examples.

(The tags, in reading order, are ``SPECTACULAR_SETTINGS["TAGS"]`` in the settings.)
Each operation's one-line summary is here, in one list a writer can read top
to bottom; a description set on the view (``extend_schema``) wins over the one
here, which only fills the gaps. ``eventflow.api.schema.AutoSchema`` applies
both, and a test requires every operation to have a summary and a description.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample

# operation id -> (summary, description used when the view gives none)
OPERATIONS: dict[str, tuple[str, str | None]] = {
    "auth_register": ("Create an account", None),
    "auth_login": ("Sign in", None),
    "auth_refresh": ("Refresh the access token", None),
    "auth_logout": ("Sign out", None),
    "auth_csrf": ("A CSRF token for the refresh cookie", None),
    "users_me_retrieve": ("Your profile", "The signed-in user's profile."),
    "users_me_update": ("Change your profile", None),
    "users_me_export": ("Download your personal data", None),
    "users_me_tickets": ("Your tickets", None),
    "users_me_events": ("Your events", None),
    "organizers_me_retrieve": (
        "Your organizer profile",
        "The caller's organizer profile; 404 until they become an organizer (POST).",
    ),
    "organizers_me_create": ("Become an organizer", None),
    "organizers_me_update": (
        "Change your organizer profile",
        "Change the display name, slug or contact email of the caller's organizer profile.",
    ),
    "events_list": ("Search the catalogue", None),
    "events_create": ("Create an event", None),
    "events_retrieve": (
        "An event",
        "A published event with its ticket types and live availability. A draft is visible to its "
        "organizer only; anyone else gets 404.",
    ),
    "events_update": (
        "Change an event",
        "Owner only. Send only the fields to change. A cancelled event can no longer be changed (409).",
    ),
    "events_destroy": ("Delete an event", None),
    "events_publish": (
        "Publish an event",
        "Owner only: a draft with at least one ticket type that has not started becomes visible to everyone "
        "and goes on sale.",
    ),
    "events_image": ("Upload the event's image", None),
    "events_cancel": ("Cancel an event and refund its buyers", None),
    "events_availability": ("Live availability", None),
    "events_sales": ("Sales of an event", None),
    "events_attendees": ("Attendees of an event", None),
    "ticket_types_list": ("Ticket types of an event", "The tiers of an event, in display order."),
    "ticket_types_create": (
        "Add a ticket type",
        "Owner only. `available` starts at `capacity`; `max_per_buyer` optionally caps what one buyer may "
        "hold across orders.",
    ),
    "ticket_types_retrieve": ("A ticket type", "One tier of an event with its live `available` count."),
    "ticket_types_update": ("Change a ticket type", None),
    "ticket_types_destroy": (
        "Delete a ticket type",
        "Owner only, while no ticket of it is sold or held; a published event keeps at least one.",
    ),
    "orders_list": ("Your orders", None),
    "discount_codes_list": ("Discount codes of an event", None),
    "discount_codes_create": ("Add a discount code", None),
    "discount_codes_retrieve": ("A discount code", None),
    "discount_codes_update": ("Change a discount code", None),
    "discount_codes_destroy": ("Delete a discount code", None),
    "orders_create": ("Reserve tickets", None),
    "orders_retrieve": ("An order", "One of the caller's orders; anyone else's is a 404."),
    "orders_queue_retrieve": ("A queued purchase's outcome", None),
    "orders_cancel": ("Cancel an order (a paid one is refunded)", None),
    "events_waitlist_join": ("Join a sold-out ticket type's waiting list", None),
    "waitlist_list": ("Your waiting list entries", None),
    "waitlist_retrieve": ("One of your waiting list entries", "Its place in line, or its offer once made."),
    "waitlist_leave": ("Leave the waiting list", None),
    "events_waitlist_entries_list": ("An event's waiting list", None),
    "events_waitlist_entries_create": ("Put a buyer on the waiting list", None),
    "events_waitlist_entries_remove": ("Take an entry off the waiting list (by id in the body)", None),
    "events_waitlist_entries_retrieve": (
        "One entry of an event's waiting list",
        "Owner or admin: one entry, with its buyer, place in line and any offer.",
    ),
    "events_waitlist_entries_destroy": ("Take an entry off the waiting list", None),
    "orders_pay": ("Pay for a reservation", None),
    "payments_webhook": ("A payment gateway's webhook", None),
    "payments_test_complete": ("Test gateway: complete a payment", None),
    "payments_test_fail": ("Test gateway: decline a payment", None),
    "orders_tickets": ("Tickets of an order", None),
    "orders_tickets_pdf": ("An order's tickets as a PDF", None),
    "tickets_qr": ("A ticket's QR code", None),
    # Ticket transfer and check-in at the door (issue 11).
    "auth_password_reset": ("Ask for a code to set a new password", None),
    "auth_password_reset_confirm": ("Set a new password with an emailed code", None),
    # Issue 13B
    "auth_password_change": ("Change your password", None),
    "auth_email_verify": ("Verify your email address", None),
    "auth_email_verify_resend": ("Ask for a new email verification code", None),
    "users_me_sessions_list": ("Your sessions", None),
    "users_me_sessions_end_all": ("Log out everywhere", None),
    "users_me_sessions_retrieve": ("One of your sessions", None),
    "users_me_sessions_end": ("End one of your sessions", None),
    "tickets_transfer": ("Transfer a ticket to somebody else", None),
    "events_check_ins_create": ("Check a ticket in at the door", None),
    "events_check_ins_batch": ("Upload scans made offline", None),
    "events_check_in_list": ("The door's offline check-in list", None),
    "organizers_me_check_in_staff_list": ("Your check-in staff", None),
    "organizers_me_check_in_staff_create": ("Name check-in staff", None),
    "organizers_me_check_in_staff_delete": ("Remove check-in staff", None),
    # Reserved seating (issue 11).
    "events_seats_list": ("An event's seat map", None),
    "events_seats_create": ("Add seats to an event (bulk)", None),
    "api_root": ("List the API's resources", None),
    "health": ("Health", None),
    "staff_orders": (
        "All orders",
        "Platform admins: every order, newest first, filterable by `status`, `event` and `user`.",
    ),
    "staff_payouts": ("Payouts owed to organizers", None),
    "staff_stats": (
        "Platform statistics",
        "Platform admins: users, events, orders by status, tickets sold, and revenue per currency.",
    ),
}

_EVENT = {
    "title": "Jazz Night",
    "category": "music",
    "venue_name": "A-Trane",
    "city": "Berlin",
    "country": "DE",
    "latitude": "52.5065",
    "longitude": "13.3203",
    "starts_at": "2027-03-01T20:00:00+01:00",
    "ends_at": "2027-03-01T23:00:00+01:00",
    "timezone": "Europe/Berlin",
    "currency": "EUR",
}

# operation id -> request examples
EXAMPLES: dict[str, list[OpenApiExample]] = {
    "auth_register": [
        OpenApiExample(
            "A new account",
            value={"email": "ada@example.com", "password": "a-long-passphrase-42", "name": "Ada"},
            request_only=True,
        )
    ],
    "auth_login": [
        OpenApiExample(
            "Email and password",
            value={"email": "ada@example.com", "password": "a-long-passphrase-42"},
            request_only=True,
        )
    ],
    "auth_refresh": [
        OpenApiExample("The refresh token", value={"refresh": "<refresh token from sign-in>"}, request_only=True)
    ],
    "organizers_me_create": [OpenApiExample("A display name", value={"display_name": "Ada Live"}, request_only=True)],
    "events_create": [OpenApiExample("A concert", value=_EVENT, request_only=True)],
    "events_update": [
        OpenApiExample("Move it an hour later", value={"starts_at": "2027-03-01T21:00:00+01:00"}, request_only=True)
    ],
    "ticket_types_create": [
        OpenApiExample(
            "General admission",
            value={"name": "General", "price_cents": 2500, "capacity": 200, "max_per_order": 6, "max_per_buyer": 8},
            request_only=True,
        )
    ],
    "discount_codes_create": [
        OpenApiExample(
            "20 % off, 100 uses, until the end of March",
            value={"code": "EARLYBIRD", "percent_off": 20, "max_uses": 100, "valid_until": "2027-04-01T00:00:00+02:00"},
            request_only=True,
        ),
        OpenApiExample(
            "5.00 off VIP tickets",
            value={"code": "VIP5", "amount_off_cents": 500, "ticket_types": [2]},
            request_only=True,
        ),
    ],
    "orders_create": [
        OpenApiExample(
            "Two tickets of one type",
            value={"event": 1, "items": [{"ticket_type": 1, "quantity": 2}]},
            request_only=True,
        ),
        OpenApiExample(
            "With a discount code",
            value={"event": 1, "items": [{"ticket_type": 1, "quantity": 2}], "discount_code": "earlybird"},
            request_only=True,
        ),
    ],
}
