"""Personal data: an enrolment's trigger context and its step details are exported and
emptied on erasure (the rows stay, so the journey's counts do not change)."""

from __future__ import annotations

from kizuna.core.personal_data import handlers
from kizuna.journeys import services
from kizuna.journeys.models import Enrolment, StepExecution
from kizuna.journeys.services import Entrant
from kizuna.journeys.tests.conftest import graph, live, make_customer
from kizuna.messaging.models import Channel, Template


def test_personal_data_export_and_erase(mail: Channel, thanks: Template) -> None:
    customer = make_customer("p@example.jp")
    journey = live(graph(mail))
    services.enrol_many(
        journey=journey, entrants=[Entrant(customer.pk, context={"note": "電話してほしい"})]
    )
    services.journeys_run_due()
    by_name = {h.name: h for h in handlers()}
    exported = list(by_name["journeys.enrolment"].export(customer.pk))
    assert exported[0]["context"] == {"note": "電話してほしい"}
    assert len(list(by_name["journeys.stepexecution"].export(customer.pk))) == 2
    assert by_name["journeys.enrolment"].erase(customer.pk, pseudonym="erased-x") == 1
    assert by_name["journeys.stepexecution"].erase(customer.pk, pseudonym="erased-x") == 2
    assert Enrolment.objects.get().context == {}
    assert all(d == {} for d in StepExecution.objects.values_list("detail", flat=True))
    assert StepExecution.objects.count() == 2
