from kizuna.loyalty.tests.conftest import customer, other, programme, shop  # noqa: F401
