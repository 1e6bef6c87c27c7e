"""Instruments beyond spot and perps: option positions and their pricing.

:mod:`~riskmodels.instruments.black76` prices European options on the forward;
:mod:`~riskmodels.instruments.options` holds the option table of a book and
revalues it under scenarios of price and implied-volatility moves (full
revaluation, vectorised over positions); :mod:`~riskmodels.instruments.vol`
supplies implied vols (a user IV history, Deribit DVOL, or a labelled proxy
from prices); :mod:`~riskmodels.instruments.generate` builds seeded option
books; :mod:`~riskmodels.instruments.book_config` reads the ``[options]``
config section.
"""
