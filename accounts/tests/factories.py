import factory
from django.contrib.auth.hashers import make_password

from accounts.models import OrganizerProfile, User

DEFAULT_PASSWORD = "correct-horse-battery-staple"
# Hash once: Argon2 is deliberately slow, and most tests only need a valid login.
_DEFAULT_PASSWORD_HASH = make_password(DEFAULT_PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    password = _DEFAULT_PASSWORD_HASH
    role = User.Role.ATTENDEE


class OrganizerProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrganizerProfile

    user = factory.SubFactory(UserFactory, role=User.Role.ORGANIZER)
    display_name = factory.Faker("company")
    slug = factory.Sequence(lambda n: f"organizer-{n}")
    contact_email = factory.LazyAttribute(lambda o: o.user.email)
