"""The incident console: server-rendered pages for people (list, incident, runbooks, review) under ``/``.

:mod:`.views` is the (thin) blueprint; :mod:`.signin` the sessions, CSRF and roles; :mod:`.incident_data`
gathers what a page shows; :mod:`.charts` draws SVG on the server; :mod:`.users` reads the users file.
"""
