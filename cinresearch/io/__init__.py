"""Input files → validated, pseudonymised tables, and the load into the store.

:mod:`.cin` reads CIN census XML returns; :mod:`.ssda903`, :mod:`.npd` and :mod:`.population`
read the CSV sources through :mod:`.csv_tables`; :mod:`.loader` recognises each file's kind,
reads it and commits it. :mod:`.errors` (file-level faults) and :mod:`.inputs` (what a reader
hands the loader) are shared by all of them, so no reader imports the loader. ``_cinfast`` is
the optional compiled extension (the CIN reader and the HMAC of :mod:`cinresearch.pseudonymise`).
"""
