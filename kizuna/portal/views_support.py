"""The public contact form (お問い合わせ): anyone may write; the FAQ assistant answers at once
when it is confident, and the customer can still ask for a person. CSRF-protected, rate
limited per IP, a honeypot field against bots, and a limit per contact address and hour (in
the service). Everything shown is escaped by the templates."""

from __future__ import annotations

from django import forms
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from kizuna.support import intake
from kizuna.support.models import Inquiry

RATE = "10/h"  # submissions per IP address and hour
HANDOVER_SALT = "support.handover"
HANDOVER_MAX_AGE = 7 * 24 * 3600


class ContactForm(forms.Form):
    name = forms.CharField(label=_("Your name"), max_length=150, required=False)
    email = forms.EmailField(label=_("Email address"))
    subject = forms.CharField(label=_("Subject"), max_length=200)
    body = forms.CharField(label=_("Your question"), max_length=5000, widget=forms.Textarea)
    # Left empty by people (hidden from them); bots fill every field.
    website = forms.CharField(label=_("Leave this empty"), required=False)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("website"):
            raise ValidationError(_("Your message could not be sent. Please try again."))
        return data


def _language(request: HttpRequest) -> str:
    lang = request.GET.get("lang") or translation.get_language_from_request(request)
    return lang if lang in ("ja", "en") else "ja"


@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate=RATE, method="POST", block=True)
@never_cache
def contact(request: HttpRequest) -> HttpResponse:
    lang = _language(request)
    with translation.override(lang):
        form = ContactForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                result = intake.contact_form_submit(
                    name=data["name"],
                    email=data["email"],
                    subject=data["subject"],
                    body=data["body"],
                    locale=lang,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    target = {"contact_email": "email", "contact_name": "name"}.get(field, field)
                    for error in errors:
                        form.add_error(target if target in form.fields else None, error)
            else:
                token = signing.dumps(result.inquiry.pk, salt=HANDOVER_SALT)
                response = render(
                    request,
                    "portal/support/thanks.html",
                    {"lang": lang, "result": result, "token": token},
                )
                response.headers["Content-Language"] = lang
                return response
        status = 422 if request.method == "POST" else 200
        response = render(
            request, "portal/support/contact.html", {"lang": lang, "form": form}, status=status
        )
        response.headers["Content-Language"] = lang
        return response


@require_POST
@ratelimit(key="ip", rate=RATE, block=True)
@never_cache
def handover(request: HttpRequest, token: str) -> HttpResponse:
    """The automatic answer did not help: a person takes the inquiry over."""
    try:
        inquiry_id = signing.loads(token, salt=HANDOVER_SALT, max_age=HANDOVER_MAX_AGE)
    except signing.BadSignature as exc:
        raise Http404 from exc
    inquiry = Inquiry.objects.filter(pk=inquiry_id).first()
    if inquiry is None:
        raise Http404
    intake.handover(inquiry=inquiry)
    lang = _language(request)
    with translation.override(lang):
        return render(request, "portal/support/handover.html", {"lang": lang, "inquiry": inquiry})
