"""Everything about ARCHIVED data (DESIGN.md §3): XNAT's data REST, the archive pages, edits of archived
sessions and their storage. The prearchive app ends where a session is archived.

- ``services``: project codes and anon scripts, edits/quarantine/delete of archived sessions;
- ``api`` (review actions on prearchive sessions, /data/services/archive), ``api_data`` (archived sessions'
  REST, project codes), ``api_anon`` (anon script config paths), ``urls`` (their routes);
- ``views`` and ``page_urls``: the pages under /archive/;
- ``tasks``: the Celery tasks of the review actions (registered names kept: ``prearchive.session_*``).
Models stay in ``xnatlite.models`` and ``prearchive.models`` (migrations).
"""
