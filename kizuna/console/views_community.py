"""Console pages of the community: events (list, create and edit forms, detail with
registrations and the waitlist, check-in by the ticket's code, publish/cancel) and the idea
board (ideas by votes, status with a note for the author, hiding comments)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from kizuna.community import services
from kizuna.community.models import (
    CommunityEvent,
    EventKind,
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


DATETIME_INPUT = "%Y-%m-%dT%H:%M"


def _when_widget() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_INPUT)


class EventForm(forms.Form):
    """An event's fields as staff type them. Times are read and shown in the installation's
    time zone (Japan time by default); the service holds the rules (slug unique, capacity not
    below the seats taken, https links) and its errors land on the field they name."""

    slug = forms.SlugField(
        label=gettext_lazy("Slug (in links)"),
        max_length=60,
        help_text=gettext_lazy("Lower-case letters, digits, - and _; cannot change later."),
    )
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    title_en = forms.CharField(
        label=gettext_lazy("Title (English)"), max_length=200, required=False
    )
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=EventKind.choices)
    starts_at = forms.DateTimeField(
        label=gettext_lazy("Starts at"), input_formats=[DATETIME_INPUT], widget=_when_widget()
    )
    ends_at = forms.DateTimeField(
        label=gettext_lazy("Ends at"), input_formats=[DATETIME_INPUT], widget=_when_widget()
    )
    venue = forms.CharField(label=gettext_lazy("Venue"), max_length=200, required=False)
    online_url = forms.URLField(
        label=gettext_lazy("Online link (https://)"),
        max_length=200,
        required=False,
        assume_scheme="https",
    )
    capacity = forms.IntegerField(
        label=gettext_lazy("Capacity (seats)"), min_value=1, max_value=100_000
    )
    reminder_hours = forms.IntegerField(
        label=gettext_lazy("Send the reminder this many hours before the start"),
        min_value=0,
        max_value=24 * 14,
        initial=24,
    )
    description = forms.CharField(
        label=gettext_lazy("Description"),
        max_length=10_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    description_en = forms.CharField(
        label=gettext_lazy("Description (English)"),
        max_length=10_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args: Any, event: CommunityEvent | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zone = timezone.get_current_timezone_name()
        for key in ("starts_at", "ends_at"):
            self.fields[key].help_text = _("Time zone: %(tz)s") % {"tz": zone}
        if event is not None:  # as in the API: the slug (in links) and the kind stay
            for key in ("slug", "kind"):
                self.fields[key].disabled = True
                self.fields[key].required = False

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", _("The event must end after it starts."))
        return data

    def service_data(self, event: CommunityEvent | None) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        if event is not None:
            data.pop("slug", None)
            data.pop("kind", None)
        return data

    def add_service_errors(self, exc: ValidationError) -> None:
        for field, errors in exc.message_dict.items():
            self.add_error(field if field in self.fields else None, errors)


def _event_initial(event: CommunityEvent) -> dict[str, Any]:
    return {key: getattr(event, key) for key in EventForm.base_fields}


def _event_form(request: HttpRequest, event: CommunityEvent | None) -> HttpResponse:
    if request.method == "POST":
        form = EventForm(request.POST, event=event, initial=_event_initial(event) if event else {})
        if form.is_valid():
            try:
                if event is None:
                    saved = services.event_create(
                        data=form.service_data(None), actor=_staff(request)
                    )
                    messages.success(request, _("The event was created as a draft."))
                else:
                    saved = services.event_update(
                        event=event, data=form.service_data(event), actor=_staff(request)
                    )
                    messages.success(request, _("The event was saved."))
                return redirect("console:community_event", saved.pk)
            except ValidationError as exc:
                form.add_service_errors(exc)
        status = 400
    else:
        form = EventForm(event=event, initial=_event_initial(event) if event else {})
        status = 200
    return render(
        request, "console/community/event_form.html", {"form": form, "event": event}, status=status
    )


@staff_required("community.add_communityevent")
def event_new(request: HttpRequest) -> HttpResponse:
    return _event_form(request, None)


@staff_required("community.change_communityevent")
def event_edit(request: HttpRequest, event_id: int) -> HttpResponse:
    return _event_form(request, _event(event_id))


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
