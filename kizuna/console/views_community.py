"""Console pages of the community: events (list, detail with registrations and the waitlist,
check-in by the ticket's code, publish/cancel) and the idea board (ideas by votes, status
with a note for the author, hiding comments)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from kizuna.community import services
from kizuna.community.models import (
    CommunityEvent,
    EventStatus,
    Idea,
    IdeaComment,
    IdeaStatus,
    Registration,
)
from kizuna.console.views import _page, _staff, staff_required


def _event(event_id: int) -> CommunityEvent:
    event = CommunityEvent.objects.filter(pk=event_id).first()
    if event is None:
        raise Http404
    return event


@staff_required("community.view_communityevent")
def event_list(request: HttpRequest) -> HttpResponse:
    events = CommunityEvent.objects.annotate(
        registered=Count("registrations", filter=Q(registrations__status="registered")),
        waitlisted=Count("registrations", filter=Q(registrations__status="waitlisted")),
        attended=Count("registrations", filter=Q(registrations__checked_in_at__isnull=False)),
    ).order_by("-starts_at")
    return render(request, "console/community/events.html", {"page": _page(request, events)})


@staff_required("community.view_communityevent", "community.view_registration")
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event(event_id)
    registrations = Registration.objects.filter(event=event).select_related("customer")
    return render(
        request,
        "console/community/event.html",
        {
            "event": event,
            "registrations": registrations.order_by("status", "registered_at", "id"),
            "statuses": EventStatus.choices,
        },
    )


@require_POST
@staff_required("community.change_communityevent")
def event_status(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event(event_id)
    try:
        services.event_set_status(
            event=event, status=request.POST.get("status", ""), actor=_staff(request)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("console:community_event", event.pk)


@require_POST
@staff_required("community.change_registration")
def check_in(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event(event_id)
    try:
        registration = services.check_in(
            token=request.POST.get("token", "").strip(), actor=_staff(request)
        )
        if registration.event_id != event.pk:
            messages.warning(
                request,
                _("Checked in, but for another event: %(e)s.") % {"e": registration.event.title},
            )
        else:
            messages.success(request, _("Checked in: %(c)s.") % {"c": registration.customer})
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("console:community_event", event.pk)


@staff_required("community.view_idea")
def idea_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    ideas = Idea.objects.select_related("author").prefetch_related("comments")
    if status in IdeaStatus.values:
        ideas = ideas.filter(status=status)
    return render(
        request,
        "console/community/ideas.html",
        {
            "page": _page(request, ideas.order_by("-vote_count", "-id")),
            "statuses": IdeaStatus.choices,
            "status": status,
        },
    )


@require_POST
@staff_required("community.change_idea")
def idea_status(request: HttpRequest, idea_id: int) -> HttpResponse:
    idea = Idea.objects.filter(pk=idea_id).first()
    if idea is None:
        raise Http404
    try:
        services.idea_set_status(
            idea=idea,
            status=request.POST.get("status", ""),
            note=request.POST.get("note", ""),
            actor=_staff(request),
        )
        messages.success(request, _("Idea status changed; the author is notified."))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("console:community_ideas")


@require_POST
@staff_required("community.delete_ideacomment")
def comment_hide(request: HttpRequest, comment_id: int) -> HttpResponse:
    comment = IdeaComment.objects.filter(pk=comment_id).first()
    if comment is None:
        raise Http404
    services.comment_hide(
        comment=comment, hidden=request.POST.get("hidden") != "0", actor=_staff(request)
    )
    return redirect("console:community_ideas")
