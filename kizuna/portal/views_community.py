"""Community pages of the member portal: upcoming events (register, join the waitlist,
cancel, the ticket's QR code for check-in) and the idea board (post, vote once, comment).
Reached from the member's signed link; mobile-first, ja/en, CSRF, rate limited; customers'
text is only ever shown escaped."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import wraps
from typing import Any

import segno
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from kizuna.community import services
from kizuna.community.models import (
    CommunityEvent,
    EventStatus,
    Idea,
    IdeaVote,
    Registration,
    RegistrationStatus,
)
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer
from kizuna.portal.links import customer_id_from

RATE = "60/m"
POST_RATE = "10/m"  # posts, votes, comments and registrations per address


def member_community_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @ratelimit(key="ip", rate=RATE, block=True)
    @ratelimit(key="ip", rate=POST_RATE, method="POST", block=True, group="portal-community-post")
    @never_cache
    @require_http_methods(["GET", "POST"])
    @wraps(view)
    def wrapper(request: HttpRequest, token: str, *args: Any, **kwargs: Any) -> HttpResponse:
        customer_id = customer_id_from(token)
        customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
        if customer is None:
            raise Http404
        language = request.GET.get("lang") or customer.locale or "ja"
        if language not in ("ja", "en"):
            language = "ja"
        with translation.override(language):
            response = view(request, token, customer, language, *args, **kwargs)
            response.headers.setdefault("Content-Language", language)
        # The member token is in the URL: never sent to other sites ("no-referrer" would make
        # browsers send `Origin: null` with the forms' POSTs, which the CSRF check refuses).
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Robots-Tag"] = "noindex"
        return response

    return wrapper


@member_community_view
def events(request: HttpRequest, token: str, customer: Customer, language: str) -> HttpResponse:
    error = ""
    if request.method == "POST":
        event = CommunityEvent.objects.filter(
            pk=request.POST.get("event") or 0, status=EventStatus.PUBLISHED
        ).first()
        if event is None:
            raise Http404
        try:
            if request.POST.get("action") == "cancel":
                current = Registration.objects.filter(event=event, customer=customer).first()
                if current is not None:
                    services.registration_cancel(registration=current)
            else:
                services.register(event=event, customer=customer)
            return redirect(request.path + f"?lang={language}")
        except ValidationError as exc:
            error = " ".join(exc.messages)
    upcoming = list(
        CommunityEvent.objects.filter(status=EventStatus.PUBLISHED, ends_at__gte=now()).order_by(
            "starts_at"
        )[:50]
    )
    mine = {
        r.event_id: r
        for r in Registration.objects.filter(customer=customer, event__in=upcoming).exclude(
            status=RegistrationStatus.CANCELLED
        )
    }
    taken = {
        e.pk: e.registrations.filter(status=RegistrationStatus.REGISTERED).count() for e in upcoming
    }
    items = [
        {
            "event": e,
            "title": e.title_for(language),
            "description": e.description_for(language),
            "left": max(0, e.capacity - taken[e.pk]),
            "mine": mine.get(e.pk),
        }
        for e in upcoming
    ]
    return render(
        request,
        "portal/community/events.html",
        {"items": items, "token": token, "lang": language, "error": error},
        status=400 if error else 200,
    )


@member_community_view
def ticket_qr(
    request: HttpRequest, token: str, customer: Customer, language: str, registration_id: int
) -> HttpResponse:
    registration = Registration.objects.filter(
        pk=registration_id, customer=customer, status=RegistrationStatus.REGISTERED
    ).first()
    if registration is None:
        raise Http404
    out = io.BytesIO()
    segno.make(services.check_in_token(registration), error="m").save(
        out, kind="svg", scale=5, border=2
    )
    return HttpResponse(out.getvalue(), content_type="image/svg+xml")


@member_community_view
def ideas(request: HttpRequest, token: str, customer: Customer, language: str) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    values = {"title": "", "body": ""}
    if request.method == "POST":
        action = request.POST.get("action")
        idea = Idea.objects.filter(pk=request.POST.get("idea") or 0).first()
        try:
            if action == "vote" and idea is not None:
                services.idea_vote(idea=idea, customer=customer)
            elif action == "unvote" and idea is not None:
                services.idea_unvote(idea=idea, customer=customer)
            elif action == "comment" and idea is not None:
                services.idea_comment(idea=idea, customer=customer, body=request.POST.get("body"))
            elif action == "post":
                values = {
                    "title": request.POST.get("title", ""),
                    "body": request.POST.get("body", ""),
                }
                services.idea_post(customer=customer, title=values["title"], body=values["body"])
            else:
                raise Http404
            return redirect(request.path + f"?lang={language}")
        except ValidationError as exc:
            errors = exc.message_dict
            if action == "comment":
                errors = {"comment": exc.messages}
    rows = list(Idea.objects.prefetch_related("comments").order_by("-vote_count", "-id")[:50])
    voted = set(
        IdeaVote.objects.filter(customer=customer, idea__in=rows).values_list("idea_id", flat=True)
    )
    items = [
        {
            "idea": i,
            "voted": i.pk in voted,
            "comments": [c for c in i.comments.all() if not c.hidden],
        }
        for i in rows
    ]
    return render(
        request,
        "portal/community/ideas.html",
        {"items": items, "token": token, "lang": language, "errors": errors, "values": values},
        status=400 if errors else 200,
    )
