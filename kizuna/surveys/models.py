"""Surveys: questionnaires (NPS, CSAT, rating, choices, free text, conditional questions),
their versioned questions, per-customer invitations (signed links) and the responses.

A survey's questions are versioned: changing them once responses exist starts a new version
(`Survey.version`), the old questions stay so old answers keep their meaning, and each
response records the version it answered.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.customers.models import Customer


class SurveyStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


class QuestionKind(models.TextChoices):
    NPS = "nps", _("NPS (0-10)")
    CSAT = "csat", _("CSAT (1-5)")
    RATING = "rating", _("Rating")
    SINGLE = "single", _("Single choice")
    MULTIPLE = "multiple", _("Multiple choice")
    TEXT = "text", _("Free text")


class Survey(models.Model):
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    title = models.CharField(_("title"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=SurveyStatus.choices, default=SurveyStatus.DRAFT
    )
    allow_anonymous = models.BooleanField(
        _("anonymous answers allowed"),
        default=False,
        help_text=_("Anyone with the public link may answer, without a personal link."),
    )
    version = models.PositiveIntegerField(_("version"), default=1)
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.title

    def title_for(self, language: str) -> str:
        return self.title_en if language == "en" and self.title_en else self.title

    def description_for(self, language: str) -> str:
        return self.description_en if language == "en" and self.description_en else self.description


class Question(models.Model):
    """One question of one version of a survey. `show_if` makes it conditional:
    {"question": "<earlier key>", "op": "eq|ne|lte|gte|in", "value": ...}."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    version = models.PositiveIntegerField(_("version"))
    position = models.PositiveIntegerField(_("position"))
    key = models.SlugField(_("key"), max_length=40)
    kind = models.CharField(_("kind"), max_length=10, choices=QuestionKind.choices)
    text = models.CharField(_("question"), max_length=500)
    text_en = models.CharField(_("question (English)"), max_length=500, blank=True)
    required = models.BooleanField(_("required"), default=False)
    # [{"value": "coffee", "label": "コーヒー", "label_en": "Coffee"}, ...]
    choices = models.JSONField(_("choices"), default=list, blank=True)
    scale_max = models.PositiveSmallIntegerField(_("highest rating"), default=5)
    show_if = models.JSONField(_("shown if"), default=dict, blank=True)
    trait_key = models.CharField(
        _("customer trait"),
        max_length=64,
        blank=True,
        help_text=_("The answer is stored in this customer trait (zero-party data)."),
    )

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["survey_id", "version", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "version", "key"], name="surveys_question_key_per_version"
            ),
            models.UniqueConstraint(
                fields=["survey", "version", "position"], name="surveys_question_position"
            ),
        ]

    def __str__(self) -> str:
        return self.text

    def text_for(self, language: str) -> str:
        return self.text_en if language == "en" and self.text_en else self.text

    @property
    def score_range(self) -> tuple[int, int] | None:
        if self.kind == QuestionKind.NPS:
            return (0, 10)
        if self.kind == QuestionKind.CSAT:
            return (1, 5)
        if self.kind == QuestionKind.RATING:
            return (1, int(self.scale_max))
        return None

    def choice_label(self, value: str, language: str) -> str:
        for choice in self.choices or []:
            if choice.get("value") == value:
                if language == "en" and choice.get("label_en"):
                    return str(choice["label_en"])
                return str(choice.get("label") or value)
        return value


class Invitation(models.Model):
    """A customer asked to answer (a signed personal link handed out): the denominator of
    the response rate."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="invitations")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(_("channel"), max_length=20, blank=True)
    sent_at = models.DateTimeField(_("sent at"))
    responded_at = models.DateTimeField(_("responded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "customer"], name="surveys_invitation_once_per_customer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.survey_id}:{self.customer_id}"


class Response(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    version = models.PositiveIntegerField(_("version"))
    customer = models.ForeignKey(
        Customer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="survey_responses",
        verbose_name=_("customer"),
    )
    invitation = models.OneToOneField(
        Invitation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="response",
    )
    language = models.CharField(_("language"), max_length=5, default="ja")
    channel = models.CharField(_("channel"), max_length=20, default="portal")
    # The first NPS / CSAT answer, copied here for the analytics' aggregates.
    nps = models.SmallIntegerField(_("NPS score"), null=True, blank=True)
    csat = models.SmallIntegerField(_("CSAT score"), null=True, blank=True)
    submitted_at = models.DateTimeField(_("submitted at"), db_index=True)

    class Meta:
        verbose_name = _("response")
        verbose_name_plural = _("responses")
        ordering = ["-submitted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "customer"],
                condition=Q(customer__isnull=False),
                name="surveys_response_once_per_customer",
            ),
            models.CheckConstraint(
                condition=Q(nps__isnull=True) | Q(nps__gte=0, nps__lte=10),
                name="surveys_response_nps_range",
            ),
            models.CheckConstraint(
                condition=Q(csat__isnull=True) | Q(csat__gte=1, csat__lte=5),
                name="surveys_response_csat_range",
            ),
        ]
        indexes = [models.Index(fields=["survey", "submitted_at"])]

    def __str__(self) -> str:
        return f"{self.survey_id}#{self.pk}"


class Answer(models.Model):
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="answers")
    score = models.SmallIntegerField(_("score"), null=True, blank=True)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    text = models.TextField(_("text"), blank=True)
    language = models.CharField(_("language"), max_length=5, blank=True)
    sentiment = models.FloatField(_("sentiment"), null=True, blank=True)
    # The free text's content words (kizuna.core.text.tokenize, unstemmed), kept for the
    # keyword frequencies so the results page does not analyse every answer again.
    terms = models.JSONField(_("terms"), default=list, blank=True)

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        constraints = [
            models.UniqueConstraint(
                fields=["response", "question"], name="surveys_answer_once_per_question"
            )
        ]

    def __str__(self) -> str:
        return f"{self.response_id}:{self.question_id}"
