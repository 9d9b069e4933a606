"""Serializer building blocks shared by the apps."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses fields it does not know.

    For writes where a stray field is a client bug worth reporting rather than
    ignoring (``status`` or ``total_cents`` in a new order), so nobody believes
    they set something they did not.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: [_("This field is not accepted.")] for name in unknown})
        return super().to_internal_value(data)
