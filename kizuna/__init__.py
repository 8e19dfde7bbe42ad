"""kizuna (絆): a self-hostable relationship-marketing platform."""

__version__ = "0.1.0"
